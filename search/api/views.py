"""Thin DRF views over the search services and selectors: validate, call ``search_run``, serialize."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFoundError
from images.api.permissions import CredentialsNeededMixin, ReadPermission, remote_fetch_check
from images.models import Image, ImageStatus
from search.query import QueryTerm, query_parse
from search.query.params import search_query_from_params
from search.selectors import system_status
from search.services.search import search_run

from .serializers import (
    SearchGetSerializer,
    SearchJsonSerializer,
    SearchOutputSerializer,
    SearchParamsSerializer,
    SearchUploadSerializer,
    page_payload,
    params_validated,
)


class StatusOutputSerializer(serializers.Serializer):
    model = serializers.DictField(help_text="model_id, model_key, loaded, error (one sentence naming the setting)")
    index = serializers.DictField(help_text="Active snapshot: version, factory, vector_count, recall_at_10")
    images = serializers.DictField(child=serializers.IntegerField(), help_text="Images per status, and total")
    embedding = serializers.DictField(
        help_text="images_per_s (over the last minute), pending, eta_seconds (null when nothing is being embedded)"
    )
    queues = serializers.DictField(child=serializers.IntegerField(), help_text="Messages waiting per queue")
    enrichment = serializers.DictField(
        help_text="ocr: enabled, available, engine, reason (why not); autotags: enabled, vocabulary"
    )


class _SearchAPIView(CredentialsNeededMixin, APIView):
    """Search endpoints: readable as the catalogue is (``reading_allowed``); throttled in the ``search`` scope."""

    permission_classes = [ReadPermission]
    throttle_scope = "search"


class SearchView(_SearchAPIView):
    """Search the catalogue by text (query syntax), by terms, or by an uploaded picture."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="search",
        parameters=[SearchGetSerializer],
        responses={200: SearchOutputSerializer},
        description='Query syntax: `beach + 0.5 * sunset - people`, `image:123 - snow`, `"quoted phrase"`; field '
        'terms for the keyword side: `by:"Michelle Spencer"`, `title:forest`, `file:IMG_2041`, `tag:`, `desc:`, '
        "`text:` (read from the picture), `auto:` (accepted automatic tags); `-by:x` excludes. `mode`: hybrid "
        "(default), semantic or keyword.",
    )
    def get(self, request: Request) -> Response:
        params = params_validated(SearchGetSerializer, request.query_params)
        return self._run(params, query_parse(text=params["q"]))

    @extend_schema(
        operation_id="search_post",
        request={"application/json": SearchJsonSerializer, "multipart/form-data": SearchUploadSerializer},
        responses={200: SearchOutputSerializer},
        examples=[
            OpenApiExample(
                "Text and a stored image",
                value={"terms": [{"text": "red circle", "weight": 1}, {"image_id": 12, "weight": -0.5}], "limit": 10},
                request_only=True,
            )
        ],
        description="JSON: weighted `terms` (each one of text, image_id, url) and/or `q`. "
        "Multipart: an `image` file, optionally with `q` text and `image_weight`.",
    )
    def post(self, request: Request) -> Response:
        if request.content_type.startswith("multipart/") or "image" in request.FILES:
            upload = SearchUploadSerializer(data=request.data)
            upload.is_valid(raise_exception=True)
            data = upload.validated_data
            picture = QueryTerm(kind="image", image=data["image"].read(), weight=data["image_weight"])
            return self._run(data, (picture, *query_parse(text=data.get("q") or "")))
        body = SearchJsonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        terms = tuple(_term(item) for item in data.get("terms") or ()) + query_parse(text=data.get("q") or "")
        return self._run(data, terms)

    def _run(self, params: dict[str, Any], terms: tuple[QueryTerm, ...]) -> Response:
        if any(term.kind == "url" for term in terms):
            remote_fetch_check(request=self.request, anonymous_setting=settings.SEMSEARCH_URL_TERMS_ANONYMOUS)
        query = search_query_from_params(params=params, terms=terms, interface="api", rows="values")
        return Response(page_payload(search_run(query=query)))


def _term(item: dict[str, Any]) -> QueryTerm:
    weight = item.get("weight", 1.0)
    if "field" in item:
        return QueryTerm(kind="field", field=item["field"], text=" ".join(item["text"].split()), weight=weight)
    if "image_id" in item:
        return QueryTerm(kind="image_id", image_id=item["image_id"], weight=weight)
    if "url" in item:
        return QueryTerm(kind="url", url=item["url"], weight=weight)
    return QueryTerm(kind="text", text=" ".join(item["text"].split()), weight=weight)


class SimilarView(_SearchAPIView):
    """Images that look like image ``id`` (its stored vector; the image itself is left out)."""

    @extend_schema(
        operation_id="images_similar",
        parameters=[SearchParamsSerializer],
        responses={200: SearchOutputSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        if not Image.objects.filter(pk=pk, status=ImageStatus.READY).exists():
            raise NotFoundError(f"Image {pk} does not exist or is not ready yet.")
        query = search_query_from_params(
            params=params_validated(SearchParamsSerializer, request.query_params),
            terms=(QueryTerm(kind="image_id", image_id=pk),),
            interface="api",
            exclude_ids=(pk,),
            rows="values",
        )
        return Response(page_payload(search_run(query=query)))


class StatusView(CredentialsNeededMixin, APIView):
    """Model, index version and counts, queue depth, pending and failed images (private when reading is)."""

    permission_classes = [ReadPermission]
    throttle_scope = "read"

    @extend_schema(responses=StatusOutputSerializer, operation_id="status")
    def get(self, request: Request) -> Response:
        return Response(StatusOutputSerializer(system_status()).data)

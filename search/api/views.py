"""Thin DRF views over the search services and selectors: validate, call ``search_run``, serialize."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFoundError
from images.models import Image, ImageStatus
from search.query import QueryTerm, query_parse
from search.query.params import search_query_from_params
from search.selectors import system_status
from search.services.search import search_run

from .serializers import (
    ErrorSerializer,
    SearchGetSerializer,
    SearchJsonSerializer,
    SearchOutputSerializer,
    SearchParamsSerializer,
    SearchUploadSerializer,
    page_payload,
)


class StatusOutputSerializer(serializers.Serializer):
    model = serializers.DictField(help_text="model_id, model_key, loaded, error (one sentence naming the setting)")
    index = serializers.DictField(help_text="Active snapshot: version, factory, vector_count, recall_at_10")
    images = serializers.DictField(child=serializers.IntegerField(), help_text="Images per status, and total")
    queues = serializers.DictField(child=serializers.IntegerField(), help_text="Messages waiting per queue")
    enrichment = serializers.DictField(
        help_text="ocr: enabled, available, engine, reason (why not); autotags: enabled, vocabulary"
    )


class SearchPermission(BasePermission):
    """Anyone may search unless ``SEMSEARCH_SEARCH_PUBLIC`` is false; then only signed-in users (token/session)."""

    message = "Search is private on this server; sign in or send an API token."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(settings.SEMSEARCH_SEARCH_PUBLIC or (request.user and request.user.is_authenticated))


class _SearchAPIView(APIView):
    """Search endpoints: public unless ``SEMSEARCH_SEARCH_PUBLIC`` is false; throttled in the ``search`` scope."""

    permission_classes = [SearchPermission]
    throttle_scope = "search"

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise NotAuthenticated(SearchPermission.message)
        super().permission_denied(request, message=message, code=code)


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed query or options; `detail` says what to fix"),
    401: OpenApiResponse(ErrorSerializer, description="Search is private and no credentials were sent"),
    403: OpenApiResponse(ErrorSerializer, description="Search is private and the credentials were refused"),
    429: OpenApiResponse(ErrorSerializer, description="Too many searches; retry after the Retry-After header"),
    503: OpenApiResponse(ErrorSerializer, description="The model cannot be loaded or the database is unavailable"),
}


class SearchView(_SearchAPIView):
    """Search the catalogue by text (query syntax), by terms, or by an uploaded picture."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="search",
        parameters=[SearchGetSerializer],
        responses={200: SearchOutputSerializer, **ERRORS},
        description='Query syntax: `beach + 0.5 * sunset - people`, `image:123 - snow`, `"quoted phrase"`.',
    )
    def get(self, request: Request) -> Response:
        params = SearchGetSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        terms = query_parse(text=params.validated_data["q"])
        return self._run(params.validated_data, terms)

    @extend_schema(
        operation_id="search_post",
        request={"application/json": SearchJsonSerializer, "multipart/form-data": SearchUploadSerializer},
        responses={200: SearchOutputSerializer, **ERRORS},
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
        query = search_query_from_params(params=params, terms=terms, interface="api")
        return Response(page_payload(search_run(query=query)))


def _term(item: dict[str, Any]) -> QueryTerm:
    weight = item.get("weight", 1.0)
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
        responses={200: SearchOutputSerializer, 404: OpenApiResponse(ErrorSerializer), **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        if not Image.objects.filter(pk=pk, status=ImageStatus.READY).exists():
            raise NotFoundError(f"Image {pk} does not exist or is not ready yet.")
        params = SearchParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = search_query_from_params(
            params=params.validated_data,
            terms=(QueryTerm(kind="image_id", image_id=pk),),
            interface="api",
            exclude_ids=(pk,),
        )
        return Response(page_payload(search_run(query=query)))


class StatusView(APIView):
    """Model, index version and counts, queue depth, pending and failed images."""

    permission_classes = [AllowAny]
    throttle_scope = "read"

    @extend_schema(responses=StatusOutputSerializer, operation_id="status")
    def get(self, request: Request) -> Response:
        return Response(StatusOutputSerializer(system_status()).data)

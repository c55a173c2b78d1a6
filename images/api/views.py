"""Catalogue REST views: thin adapters between HTTP and ``images.services`` / ``images.selectors``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from images.filters import catalogue_filters_from
from images.selectors import image_get, image_list
from images.services import fetch_url_bounded, image_delete, image_ingest
from images.services.editing import image_update
from images.services.uploads import uploaded_file_read, uploads_ingest

from . import serializers as s
from .permissions import CataloguePermission, CredentialsNeededMixin, MethodScopedThrottleMixin, remote_fetch_check


class ImagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def upload_status_code(counts: Counter) -> int:
    """201 when something was created and nothing rejected, 200 when all already existed, 207 when some files
    were rejected and others stored (retry only the rejected ones), 400 when every file was rejected."""
    if counts["rejected"] and (counts["created"] or counts["existing"]):
        return status.HTTP_207_MULTI_STATUS
    if counts["rejected"]:
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_201_CREATED if counts["created"] else status.HTTP_200_OK


class ImageListUploadView(CredentialsNeededMixin, MethodScopedThrottleMixin, APIView):
    permission_classes = [CataloguePermission]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="images_list",
        parameters=[
            s.ImageListFilterSerializer,
            OpenApiParameter("page", int, description="Page number, from 1."),
            OpenApiParameter("page_size", int, description="Results per page (default 50, at most 200)."),
        ],
        responses=s.ImagePageSerializer,
        summary="List images, newest first, with filters and page-number pagination.",
    )
    def get(self, request):
        filters = s.ImageListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = ImagePagination()
        data = filters.validated_data
        queryset = image_list(filters=catalogue_filters_from(params=data), status=data.get("status"))
        page = paginator.paginate_queryset(queryset, request, view=self)
        output = s.ImageOutputSerializer(page, many=True, context={"request": request})
        return paginator.get_paginated_response(output.data)

    @extend_schema(
        operation_id="images_upload",
        request={"multipart/form-data": s.UploadInputSerializer},
        responses={
            201: s.UploadResponseSerializer, 200: s.UploadResponseSerializer,
            207: OpenApiResponse(s.UploadResponseSerializer, description="Some files rejected; retry only those."),
            400: OpenApiResponse(s.UploadRejectedSerializer, description="Every file rejected (or invalid input)."),
        },
        summary="Upload one or many images (or zip archives); one result per file.",
    )  # fmt: skip
    def post(self, request):
        form = s.UploadInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        # read one file at a time, as it is ingested, rather than all of them up front
        files = ((f.name, uploaded_file_read(name=f.name, size=f.size, chunks=f.chunks())) for f in data["files"])
        provenance = {key: data[key] for key in ("title", "attribution", "source_link", "tags")}
        outcomes = uploads_ingest(files=files, uploader=request.user, **provenance)
        counts = Counter({"created": 0, "existing": 0, "rejected": 0})
        counts.update(outcome.status for outcome in outcomes)
        body: dict[str, Any] = s.UploadResponseSerializer(
            {"results": outcomes, "counts": dict(counts)}, context={"request": request}
        ).data
        code = upload_status_code(counts)
        if code == status.HTTP_400_BAD_REQUEST:  # an error like any other, with the per-file results kept
            body = {"detail": "Every file was rejected; see results for each reason.", "code": "all_rejected", **body}
        return Response(body, status=code)


class ImageFromUrlView(CredentialsNeededMixin, MethodScopedThrottleMixin, APIView):
    permission_classes = [CataloguePermission]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="images_from_url",
        request=s.FromUrlInputSerializer,
        responses={201: s.FromUrlResponseSerializer, 200: s.FromUrlResponseSerializer},
        summary="Fetch an image from a public http(s) URL and add it.",
    )
    def post(self, request):
        form = s.FromUrlInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        remote_fetch_check(request=request)
        fetched = fetch_url_bounded(data["url"])
        result = image_ingest(data=fetched.data, filename=fetched.final_url.rsplit("/", 1)[-1].split("?", 1)[0],
                              source_url=data["url"], source_link=data["source_link"], title=data["title"],
                              attribution=data["attribution"], tags=data["tags"], uploader=request.user)  # fmt: skip
        body = s.FromUrlResponseSerializer(
            {"status": "created" if result.created else "existing", "image": result.image},
            context={"request": request},
        ).data
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class ImageDetailView(CredentialsNeededMixin, MethodScopedThrottleMixin, APIView):
    permission_classes = [CataloguePermission]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(operation_id="images_retrieve", responses=s.ImageOutputSerializer)
    def get(self, request, image_id: int):
        return Response(s.ImageOutputSerializer(image_get(image_id), context={"request": request}).data)

    @extend_schema(
        operation_id="images_update",
        request=s.ImageUpdateSerializer,
        responses=s.ImageOutputSerializer,
        summary="Change an image's title, attribution, description, tags or source link (searchable at once).",
    )
    def patch(self, request, image_id: int):
        changes = s.ImageUpdateSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        image = image_update(image=image_get(image_id), changes=dict(changes.validated_data))
        return Response(s.ImageOutputSerializer(image, context={"request": request}).data)

    @extend_schema(operation_id="images_delete", responses={204: None})
    def delete(self, request, image_id: int):
        image_delete(image=image_get(image_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

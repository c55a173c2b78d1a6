"""Small input and output serializers for the catalogue API (one per shape, no model logic)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from images.filters import FilterError, bound_parse, formats_normalise
from images.formats import FORMAT_NAMES_TEXT
from images.models import Image, ImageStatus
from images.services.storage import media_url

# Sent by HTML forms with a session; never a parameter of its own.
ALWAYS_ACCEPTED = frozenset({"csrfmiddlewaretoken"})

# The mixin is used on serializers only; type-check it as one.
if TYPE_CHECKING:
    _SerializerBase = serializers.Serializer
else:
    _SerializerBase = object


class StrictParamsMixin(_SerializerBase):
    """Refuse parameters the serializer does not know (a typo must not change results silently): each unknown one
    is a field error with code ``unknown_parameter`` that lists the accepted names. ``extra_params`` are accepted
    without being fields (e.g. the paginator's ``page``)."""

    extra_params: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            accepted = [*self.fields, *self.extra_params]
            unknown = [key for key in data if key not in accepted and key not in ALWAYS_ACCEPTED]
            if unknown:
                message = f"Unknown parameter; accepted: {', '.join(accepted)}."
                raise serializers.ValidationError(
                    {str(key)[:100]: [ErrorDetail(message, code="unknown_parameter")] for key in unknown[:20]}
                )
        return super().to_internal_value(data)


class TagsField(serializers.ListField):
    """A list of tags; a single comma-separated string is accepted too (handy from curl and HTML forms)."""

    child = serializers.CharField(max_length=64)

    def to_internal_value(self, data):
        if hasattr(data, "getlist"):
            data = data.getlist(self.field_name)
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list | tuple):
            data = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(data)

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            values = dictionary.getlist(self.field_name)
            return values if values else serializers.empty
        return dictionary.get(self.field_name, serializers.empty)


class FormatsField(TagsField):
    """Image formats (case-insensitive; comma-separated or repeated), turned into their canonical names."""

    child = serializers.CharField(max_length=16)

    def to_internal_value(self, data):
        try:
            return list(formats_normalise(super().to_internal_value(data)))
        except FilterError as exc:
            raise serializers.ValidationError(exc.message) from None


class BoundField(serializers.CharField):
    """A date bound: ``YYYY-MM-DD`` (the whole day) or an ISO 8601 time."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_blank=True, **kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        if not text:
            return None
        if len(text) > 40:
            raise serializers.ValidationError("Use YYYY-MM-DD or an ISO 8601 time.")
        try:
            return bound_parse(text)
        except FilterError as exc:
            raise serializers.ValidationError(exc.message) from None


class CatalogueFilterSerializer(StrictParamsMixin, serializers.Serializer):
    """The catalogue filters (``images.filters``), shared by the image list and every search endpoint."""

    tags = TagsField(required=False, help_text="Comma-separated or repeated; every tag must be present (any case).")
    uploader = serializers.CharField(
        required=False, allow_blank=True, max_length=150, help_text="Username, or user id when all digits."
    )
    format = FormatsField(
        required=False, help_text=f"Any of these formats (any case, comma-separated): {FORMAT_NAMES_TEXT}."
    )
    min_width = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    min_height = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    created_after = BoundField(help_text="Added at or after; YYYY-MM-DD (from the start of that day) or ISO 8601.")
    created_before = BoundField(help_text="Added before; YYYY-MM-DD (that day included) or ISO 8601 (exclusive).")
    text = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text='Text read from the picture: a substring, case-insensitive; "quoted" for whole words.',
    )  # fmt: skip


class ImageOutputSerializer(serializers.ModelSerializer):
    uploader = serializers.CharField(source="uploader.username", default=None, read_only=True)
    original_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "title", "attribution", "tags", "source_url", "source_link", "original_filename", "width",
                  "height", "format", "file_size", "content_hash", "status", "failure_reason", "uploader",
                  "created_at", "original_url", "thumbnail_url", "description"]  # fmt: skip
        read_only_fields = fields

    def _url(self, name: str | None) -> str | None:
        if not name:
            return None
        request = self.context.get("request")
        url = media_url(name=name)
        return request.build_absolute_uri(url) if request and url else url

    def get_original_url(self, obj: Image) -> str | None:
        return self._url(obj.original.name)

    def get_thumbnail_url(self, obj: Image) -> str | None:
        return self._url(obj.thumbnail.name)


class ImageListFilterSerializer(CatalogueFilterSerializer):
    extra_params = ("page", "page_size")

    status = serializers.ChoiceField(choices=ImageStatus.choices, required=False)
    image_format = FormatsField(required=False, help_text="The former name of `format`; still accepted.")


class ImagePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ImageOutputSerializer(many=True)


class ProvenanceInputSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    attribution = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    source_link = serializers.URLField(required=False, allow_blank=True, max_length=2000, default="")
    tags = TagsField(required=False, default=list)


class ImageUpdateSerializer(StrictParamsMixin, serializers.Serializer):
    """The words of an image people may change; each one optional (PATCH)."""

    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    attribution = serializers.CharField(required=False, allow_blank=True, max_length=500)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, trim_whitespace=False,
        help_text="Free text about the picture; searchable (keyword index, desc: field).",
    )  # fmt: skip
    source_link = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    tags = TagsField(required=False)


class UploadInputSerializer(StrictParamsMixin, ProvenanceInputSerializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), allow_empty=False,
        help_text="One or more image files or zip archives (repeat the `files` field).",
    )  # fmt: skip


class FromUrlInputSerializer(StrictParamsMixin, ProvenanceInputSerializer):
    url = serializers.URLField(max_length=2000, help_text="http or https URL of an image.")


class UploadResultSerializer(serializers.Serializer):
    filename = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "existing", "rejected"])
    id = serializers.IntegerField(source="image.pk", default=None)
    reason = serializers.CharField(allow_blank=True)
    image = ImageOutputSerializer(allow_null=True)


class UploadResponseSerializer(serializers.Serializer):
    results = UploadResultSerializer(many=True)
    counts = serializers.DictField(child=serializers.IntegerField())


class UploadRejectedSerializer(UploadResponseSerializer):
    """The error shape (``detail``, ``code``: ``all_rejected``, or ``invalid`` with ``fields``) plus, when files
    were read, one result per file."""

    detail = serializers.CharField()
    code = serializers.CharField()
    # A declared field named "fields": DRF's metaclass pops it from the class, so it never shadows ``.fields``.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    results = UploadResultSerializer(many=True, required=False)
    counts = serializers.DictField(child=serializers.IntegerField(), required=False)


class FromUrlResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "existing"])
    image = ImageOutputSerializer()

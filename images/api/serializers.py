"""Small input and output serializers for the catalogue API (one per shape, no model logic)."""

from __future__ import annotations

from rest_framework import serializers

from images.formats import FORMAT_NAMES_TEXT
from images.models import Image, ImageStatus
from images.services.storage import media_url


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


class ImageOutputSerializer(serializers.ModelSerializer):
    uploader = serializers.CharField(source="uploader.username", default=None, read_only=True)
    original_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "title", "attribution", "tags", "source_url", "source_link", "original_filename", "width",
                  "height", "format", "file_size", "content_hash", "status", "failure_reason", "uploader",
                  "created_at", "original_url", "thumbnail_url"]  # fmt: skip
        read_only_fields = fields

    def _url(self, name: str) -> str | None:
        if not name:
            return None
        request = self.context.get("request")
        url = media_url(name=name)
        return request.build_absolute_uri(url) if request and url else url

    def get_original_url(self, obj: Image) -> str | None:
        return self._url(obj.original.name)

    def get_thumbnail_url(self, obj: Image) -> str | None:
        return self._url(obj.thumbnail.name)


class ImageListFilterSerializer(serializers.Serializer):
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive.")
    tags = TagsField(required=False, help_text="Comma-separated; every tag must be present.")
    uploader = serializers.CharField(required=False, help_text="User id or username.")
    image_format = serializers.CharField(
        required=False, help_text=f"{FORMAT_NAMES_TEXT} (`format` is DRF's renderer switch)."
    )
    status = serializers.ChoiceField(choices=ImageStatus.choices, required=False)
    min_width = serializers.IntegerField(required=False, min_value=1)
    min_height = serializers.IntegerField(required=False, min_value=1)
    text = serializers.CharField(
        required=False, max_length=200,
        help_text='Text read from the picture: a substring, case-insensitive; "quoted" for whole words.',
    )  # fmt: skip


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


class UploadInputSerializer(ProvenanceInputSerializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), allow_empty=False,
        help_text="One or more image files or zip archives (repeat the `files` field).",
    )  # fmt: skip


class FromUrlInputSerializer(ProvenanceInputSerializer):
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


class FromUrlResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "existing"])
    image = ImageOutputSerializer()

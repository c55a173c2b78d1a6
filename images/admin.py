"""Admin for the catalogue: list with thumbnails, status filters, search by title, attribution and hash."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from .models import Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "preview", "title", "status", "format", "width", "height", "uploader", "created_at"]
    list_display_links = ["id", "preview", "title"]
    list_filter = ["status", "format", "created_at"]
    search_fields = ["title", "attribution", "original_filename", "content_hash", "source_url"]
    readonly_fields = ["content_hash", "width", "height", "format", "file_size", "created_at", "updated_at",
                       "preview"]  # fmt: skip
    date_hierarchy = "created_at"
    list_per_page = 50

    @admin.display(description="Preview")
    def preview(self, obj: Image) -> str:
        if not obj.thumbnail:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:64px;max-width:96px" loading="lazy">',
                           obj.thumbnail.url)  # fmt: skip

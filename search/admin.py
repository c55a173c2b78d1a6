"""Admin views of the index bookkeeping (read-mostly: these rows are written by the workers)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from core.queues import queue_depths
from images.admin import ImageAdmin
from images.models import Image, ImageStatus
from images.selectors import image_status_counts

from .models import Embedding, IndexSnapshot, SearchModel
from .selectors import embedding_progress
from .state import active_model_key


class ImageWithProgressAdmin(ImageAdmin):
    """The catalogue's admin plus its embedding progress page, which reads the search side (embeddings, the active
    model), so it is added here, one layer up, rather than in ``images``."""

    def get_urls(self):
        own = [path("queue/", self.admin_site.admin_view(self.queue_view), name="images_image_queue")]
        return own + super().get_urls()

    def queue_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        failures = Image.objects.filter(status=ImageStatus.FAILED).order_by("-updated_at")[:20]
        counts = image_status_counts()
        progress = embedding_progress(model_key=active_model_key(), pending=counts[ImageStatus.PENDING])
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Embedding progress",
                   "counts": counts, "progress": progress, "eta": duration_text(progress["eta_seconds"]),
                   "queues": queue_depths(), "recent_failures": failures}  # fmt: skip
        return TemplateResponse(request, "admin/images/image/queue.html", context)


admin.site.unregister(Image)
admin.site.register(Image, ImageWithProgressAdmin)


def duration_text(seconds: float | None) -> str:
    """``1 h 05 min``, ``4 min 10 s``, ``12 s``; empty when unknown."""
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "model_key", "dimension", "created_at"]
    list_filter = ["model_key"]
    raw_id_fields = ["image"]
    readonly_fields = ["image", "model_key", "dimension", "created_at"]
    exclude = ["vector"]


@admin.register(IndexSnapshot)
class IndexSnapshotAdmin(admin.ModelAdmin):
    list_display = ["model_key", "version", "factory", "vector_count", "recall_at_10", "build_seconds", "created_at"]
    list_filter = ["model_key", "factory"]
    readonly_fields = [field.name for field in IndexSnapshot._meta.fields]


@admin.register(SearchModel)
class SearchModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "revision", "state", "model_key", "created_at", "activated_at"]
    list_filter = ["state"]

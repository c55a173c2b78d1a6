"""Admin views of the index bookkeeping (read-mostly: these rows are written by the workers)."""

from __future__ import annotations

from django.contrib import admin

from .models import Embedding, IndexSnapshot, SearchModel


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

"""Vectors and index bookkeeping. The vectors live in the database so an index can always be rebuilt."""

from __future__ import annotations

import numpy as np
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact

from images.models import Image


class Embedding(models.Model):
    """One image's vector for one model (float32, L2-normalised, stored as raw little-endian bytes)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="embeddings")
    model_key = models.CharField(max_length=255, db_index=True)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_key"], name="embedding_unique_image_model"),
            models.CheckConstraint(
                condition=Exact(Length("vector"), models.F("dimension") * 4), name="embedding_vector_length"
            ),
            models.CheckConstraint(condition=models.Q(dimension__gt=0), name="embedding_dimension_positive"),
        ]
        indexes = [models.Index(fields=["model_key", "id"])]

    def __str__(self) -> str:
        return f"embedding {self.pk} of image {self.image_id} ({self.model_key})"

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f4")


class IndexSnapshot(models.Model):
    """A Faiss index file built from the Embedding table; the newest row per model key is the active one."""

    model_key = models.CharField(max_length=255)
    version = models.PositiveIntegerField()
    file_path = models.CharField(max_length=1000, help_text="Relative to the index root.")
    factory = models.CharField(max_length=200, help_text="Faiss index factory string, e.g. Flat or IVF4096,Flat.")
    params = models.JSONField(default=dict, blank=True, help_text="Search-time parameters, e.g. nprobe.")
    vector_count = models.PositiveIntegerField()
    dimension = models.PositiveIntegerField()
    watermark = models.BigIntegerField(help_text="Highest Embedding id included in this snapshot.")
    recall_at_10 = models.FloatField(null=True, blank=True, help_text="Measured against exact search at build.")
    checksum = models.CharField(max_length=64, help_text="sha256 of the file.")
    build_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model_key", "version"], name="snapshot_unique_model_version"),
        ]

    def __str__(self) -> str:
        return f"{self.model_key} v{self.version} ({self.factory}, {self.vector_count} vectors)"


class SearchModelState(models.TextChoices):
    ACTIVE = "active", "Active"
    BUILDING = "building", "Re-embedding"
    RETIRED = "retired", "Retired"


class SearchModel(models.Model):
    """Which embedding model serves searches. At most one is active; a switch adds a ``building`` one."""

    model_key = models.CharField(max_length=255, unique=True)
    model_id = models.CharField(max_length=500)
    revision = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=16, choices=SearchModelState.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="active"), name="searchmodel_single_active"
            ),
            models.CheckConstraint(condition=models.Q(state__in=SearchModelState.values), name="searchmodel_state"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} ({self.state})"

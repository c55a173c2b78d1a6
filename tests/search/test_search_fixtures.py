"""Shared helpers for the search tests: catalogue rows with hand-made vectors, and a toy-model corpus.

Imported by the other ``test_search*``/``test_api*``/``test_ui*`` modules; it holds no tests itself.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime

import numpy as np
from django.utils import timezone

from images.models import Image, ImageStatus
from search.models import Embedding

_counter = itertools.count(1)
HAND_MODEL_KEY = "hand-made@test"


def image_make(
    *,
    title: str = "",
    status: str = ImageStatus.READY,
    width: int = 640,
    height: int = 480,
    format: str = "PNG",
    tags: list[str] | None = None,
    uploader=None,
    created_at: datetime | None = None,
) -> Image:
    """An Image row (no file behind it) with a unique content hash."""
    n = next(_counter)
    image = Image.objects.create(
        content_hash=hashlib.sha256(f"img-{n}-{title}".encode()).hexdigest(),
        original=f"originals/test-{n}.png",
        thumbnail=f"thumbnails/test-{n}.webp",
        width=width,
        height=height,
        format=format,
        title=title or f"picture {n}",
        tags=tags or [],
        uploader=uploader,
        status=status,
    )
    if created_at is not None:
        Image.objects.filter(pk=image.pk).update(created_at=created_at)
        image.refresh_from_db()
    return image


def unit(values: list[float] | np.ndarray, dimension: int = 8) -> np.ndarray:
    vector = np.zeros(dimension, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def embedding_add(image: Image, vector: np.ndarray, model_key: str = HAND_MODEL_KEY) -> Embedding:
    vector = np.asarray(vector, dtype="<f4")
    return Embedding.objects.create(
        image=image, model_key=model_key, dimension=vector.shape[0], vector=vector.tobytes()
    )


def days_ago(days: float) -> datetime:
    return timezone.now() - timezone.timedelta(days=days)

"""The facts about search state that every layer reads, each answered in one place.

- which model searches use (``active_model``; ``configured_model_key``; ``model_source``),
- the newest snapshot of a model (``snapshot_latest``),
- the images that still lack an embedding of a model (``images_missing_embedding``).

Read-only; below the index and the services, above the embedding engine and the models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from core.errors import DomainError
from images.models import Image, ImageStatus
from search.embeddings import model_key_for
from search.models import IndexSnapshot, SearchModel, SearchModelState

ACTIVE_KEY_TTL_S = 1.0
_active_cache: dict[str, tuple[float, ActiveModel]] = {}
_active_lock = threading.Lock()


class UnknownModelError(DomainError):
    """A model key that is neither a registered ``SearchModel`` nor the configured model."""

    code = "unknown_model"


def configured_model_key() -> str:
    """The key of ``SEMSEARCH_MODEL_ID`` at ``SEMSEARCH_MODEL_REVISION`` (may hash local weights: not free)."""
    return model_key_for(settings.SEMSEARCH_MODEL_ID, settings.SEMSEARCH_MODEL_REVISION or None)


@dataclass(frozen=True)
class ActiveModel:
    """The model searches use: the key its embeddings are stored under and the source that produces them."""

    model_key: str
    model_id: str
    revision: str


def active_model() -> ActiveModel:
    """The ``active`` ``SearchModel`` row, else the configured model (``SEMSEARCH_MODEL_ID`` at its revision).

    The one answer to "which model" for searches, status and readiness. Cached per process for a second (every
    search asks); ``active_model_key_forget`` clears it.
    """
    now = time.monotonic()
    cached = _active_cache.get("model")
    if cached is not None and now - cached[0] < ACTIVE_KEY_TTL_S:
        return cached[1]
    with _active_lock:
        row = (
            SearchModel.objects.filter(state=SearchModelState.ACTIVE)
            .values_list("model_key", "model_id", "revision")
            .first()
        )
        if row is not None:
            model = ActiveModel(*row)
        else:
            model = ActiveModel(configured_model_key(), settings.SEMSEARCH_MODEL_ID, settings.SEMSEARCH_MODEL_REVISION)
        _active_cache["model"] = (now, model)
        return model


def active_model_key() -> str:
    """The model key searches use (see ``active_model``)."""
    return active_model().model_key


def active_model_key_forget() -> None:
    """Drop this process's cached active model (after a switch)."""
    _active_cache.clear()


def model_source(*, model_key: str) -> tuple[str, str]:
    """``(model_id, revision)`` that produce ``model_key``. Raises ``UnknownModelError``."""
    row = SearchModel.objects.filter(model_key=model_key).values_list("model_id", "revision").first()
    if row is not None:
        return row[0], row[1]
    if model_key == configured_model_key():
        return settings.SEMSEARCH_MODEL_ID, settings.SEMSEARCH_MODEL_REVISION
    raise UnknownModelError(f"no model produces embeddings with key {model_key!r}; register it with model_switch")


def snapshot_latest(*, model_key: str) -> IndexSnapshot | None:
    """The newest snapshot row of ``model_key`` (highest version), or None before the first build."""
    return snapshots_newest_first(model_key=model_key).first()


def snapshots_newest_first(*, model_key: str) -> QuerySet[IndexSnapshot]:
    """Every snapshot row of ``model_key``, the newest first (``snapshot_latest`` is its first row)."""
    return IndexSnapshot.objects.filter(model_key=model_key).order_by("-version")


def images_missing_embedding(*, model_key: str, statuses: Iterable[str] = (ImageStatus.READY,)) -> QuerySet[Image, int]:
    """Ids (ascending) of images in ``statuses`` that have no embedding of ``model_key``."""
    return (
        Image.objects.filter(status__in=list(statuses))
        .exclude(embeddings__model_key=model_key)
        .order_by("id")
        .values_list("id", flat=True)
    )

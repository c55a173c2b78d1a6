"""Computing and storing image embeddings (``embedding_compute``) and resolving the active model key."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from images.models import Image, ImageStatus
from search.models import Embedding, SearchModel, SearchModelState
from semsearch_site.errors import DomainError

logger = logging.getLogger(__name__)

ACTIVE_KEY_TTL_S = 1.0
_active_cache: dict[str, tuple[float, ActiveModel]] = {}
_active_lock = threading.Lock()


class UnknownModelError(DomainError):
    """A model key that is neither a registered ``SearchModel`` nor the configured model."""

    code = "unknown_model"


def configured_model_key() -> str:
    """The key of ``SEMSEARCH_MODEL_ID`` at ``SEMSEARCH_MODEL_REVISION`` (may hash local weights: not free)."""
    from search.embeddings import model_key_for

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


def _image_path(image: Image) -> str | None:
    try:
        path = image.original.path
    except (ValueError, NotImplementedError):
        return None
    return path if Path(path).is_file() else None


def _store_batch(*, model_key: str, ids: list[int], vectors: np.ndarray, mark_ready: bool) -> int:
    """Store one batch's vectors and mark their images ready, atomically; images deleted meanwhile are skipped."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    with transaction.atomic():
        # Locking the rows (PostgreSQL) keeps a concurrent delete from breaking the foreign keys at commit.
        alive = set(Image.objects.select_for_update().filter(id__in=ids).values_list("id", flat=True))
        rows = [
            Embedding(image_id=image_id, model_key=model_key, dimension=vectors.shape[1], vector=vectors[i].tobytes())
            for i, image_id in enumerate(ids)
            if image_id in alive
        ]
        Embedding.objects.bulk_create(rows, ignore_conflicts=True)
        if mark_ready:
            Image.objects.filter(id__in=alive).exclude(status=ImageStatus.READY).update(
                status=ImageStatus.READY, failure_reason=""
            )
    return len(rows)


def _mark_failed(failures: list[tuple[int, str]]) -> None:
    for image_id, message in failures:
        Image.objects.filter(id=image_id).update(status=ImageStatus.FAILED, failure_reason=message[:2000])


def embedding_compute(*, image_ids: Sequence[int], model_key: str | None = None) -> dict[str, Any]:
    """Embed the given images with ``model_key`` (default: the active model) and store their vectors.

    Idempotent: images that already have an embedding for the model are skipped (and, for the active model, left
    or made ``ready``); ids of deleted images are ignored. Each batch is committed on its own: its embeddings are
    stored and, for the active model, its images marked ``ready`` in one transaction, so a crash loses at most the
    batch in flight and a rerun finishes the rest. An image that cannot be read is marked ``failed`` with the
    reason and does not hold up the others. Raises ``ModelUnavailableError`` when the model cannot be loaded.
    Returns ``{"model_key", "embedded", "skipped", "failed", "failures"}``.
    """
    from search.embeddings import get_encoder
    from semsearch_site.metrics import EMBED_BATCH_SECONDS, IMAGES_EMBEDDED

    key = model_key or active_model_key()
    mark_ready = key == active_model_key()
    wanted = list(dict.fromkeys(int(i) for i in image_ids))
    done = set(Embedding.objects.filter(model_key=key, image_id__in=wanted).values_list("image_id", flat=True))
    if done and mark_ready:
        Image.objects.filter(id__in=done, status=ImageStatus.PENDING).update(status=ImageStatus.READY)
    images = list(Image.objects.filter(id__in=[i for i in wanted if i not in done]).only("id", "original"))
    result: dict[str, Any] = {"model_key": key, "embedded": 0, "skipped": len(wanted) - len(images), "failed": 0,
                              "failures": []}  # fmt: skip
    if not images:
        return result
    failures: list[tuple[int, str]] = []
    items: list[tuple[int, str]] = []
    for image in images:
        path = _image_path(image)
        if path is None:
            failures.append((image.id, f"the original file {image.original.name or '(none)'} is missing"))
        else:
            items.append((image.id, path))
    model_id, revision = model_source(model_key=key)
    encoder = get_encoder(model_id, revision or None)
    if encoder.model_key != key:
        raise UnknownModelError(f"{model_id} now produces key {encoder.model_key!r}, not {key!r} (weights changed)")
    started = time.perf_counter()
    for ids, vectors, errors in encoder.encode_image_batches(items, batch_size=settings.SEMSEARCH_EMBED_BATCH_SIZE):
        if ids:
            stored = _store_batch(model_key=key, ids=list(ids), vectors=vectors, mark_ready=mark_ready)
            result["embedded"] += stored
            IMAGES_EMBEDDED.labels(model_key=key).inc(stored)
        failures.extend(errors)
        EMBED_BATCH_SECONDS.observe(time.perf_counter() - started)
        started = time.perf_counter()
    _mark_failed(failures)
    if failures:
        logger.warning("%d image(s) could not be embedded with %s: %s", len(failures), key,
                       "; ".join(f"{i}: {m}" for i, m in failures[:5]))  # fmt: skip
    result.update(failed=len(failures), failures=failures)
    return result

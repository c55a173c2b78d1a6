"""Computing and storing image embeddings (``embedding_compute``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from core.metrics import EMBED_BATCH_SECONDS, IMAGES_EMBEDDED
from images.models import Image, ImageStatus
from images.services.storage import media_source
from search.embeddings import get_encoder
from search.enrichment import enrichment_after_embedding
from search.models import Embedding
from search.state import UnknownModelError, active_model_key, model_source

logger = logging.getLogger(__name__)


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
    items: list[tuple[int, str | bytes]] = []
    for image in images:
        source = media_source(name=image.original.name)
        if source is None:
            failures.append((image.id, f"the original file {image.original.name or '(none)'} is missing"))
        else:
            items.append((image.id, source))
    model_id, revision = model_source(model_key=key)
    encoder = get_encoder(model_id, revision or None)
    if encoder.model_key != key:
        raise UnknownModelError(f"{model_id} now produces key {encoder.model_key!r}, not {key!r} (weights changed)")
    started = time.perf_counter()
    for ids, vectors, errors in encoder.encode_image_batches(items, batch_size=settings.SEMSEARCH_EMBED_BATCH_SIZE):
        if ids:
            stored = _store_batch(model_key=key, ids=list(ids), vectors=vectors, mark_ready=mark_ready)
            enrichment_after_embedding(model_key=key, image_ids=list(ids), vectors=vectors, active=mark_ready)
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

"""Keeping the index consistent with the database: compaction and the periodic reconcile (Celery beat)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from images.models import Image, ImageStatus
from images.services import image_embedding_enqueue
from search.models import Embedding
from search.state import active_model_key, images_missing_embedding, snapshot_latest

from .build import index_build, snapshot_paths_kept
from .errors import SnapshotCorruptError
from .locks import maintenance_lock
from .storage import snapshot_files_prune, snapshot_verify

logger = logging.getLogger(__name__)

REQUEUE_MAX = 20_000  # images re-enqueued per reconcile run, so one run stays short
COMPACT_SIGNAL_TTL_S = 60


def index_drift(*, model_key: str) -> dict[str, int | None]:
    """How far the newest snapshot lags the table: ``delta`` (embeddings newer than it) and ``orphans`` (vectors
    in it whose embedding is gone, i.e. deleted images, or late-committed rows it missed). ``version`` is None when
    there is no snapshot."""
    latest = snapshot_latest(model_key=model_key)
    embeddings = Embedding.objects.filter(model_key=model_key)
    if latest is None:
        return {"version": None, "delta": embeddings.count(), "orphans": 0}
    still_there = embeddings.filter(id__lte=latest.watermark).count()
    # More rows at or below the watermark than the snapshot holds: rows that committed after the build read past
    # them (ids are allocated before commit). They are only findable after a rebuild, so they count as drift too.
    return {
        "version": latest.version,
        "delta": embeddings.filter(id__gt=latest.watermark).count(),
        "orphans": abs(latest.vector_count - still_there),
    }


def _orphan_limit(count: int) -> int:
    return max(1, min(int(settings.SEMSEARCH_DELTA_COMPACT_THRESHOLD), count // 100))


def compaction_needed(*, model_key: str) -> bool:
    """True when the delta passed ``SEMSEARCH_DELTA_COMPACT_THRESHOLD`` or deleted images left too many orphans."""
    drift = index_drift(model_key=model_key)
    threshold = int(settings.SEMSEARCH_DELTA_COMPACT_THRESHOLD)
    return (drift["delta"] or 0) >= threshold or (drift["orphans"] or 0) >= _orphan_limit(drift["delta"] or 0)


def compaction_signal(*, model_key: str) -> bool:
    """Whether the caller should enqueue a compaction now: needed, and not already signalled in the last minute
    (shared through the cache, so a burst of embedding batches enqueues one compaction, not hundreds)."""
    if not compaction_needed(model_key=model_key):
        return False
    return cache.add(f"semsearch:compact-signal:{model_key}", 1, timeout=COMPACT_SIGNAL_TTL_S)


def index_compact(*, model_key: str) -> dict[str, Any]:
    """Fold the delta into a new snapshot when it passed the threshold (or orphans piled up); else do nothing.

    Single-flight through ``index_build``'s lock; idempotent.
    """
    if not compaction_needed(model_key=model_key):
        return {"status": "not-needed", "model_key": model_key}
    return index_build(model_key=model_key, force=True)


def _snapshot_repair(model_key: str, report: dict[str, Any]) -> None:
    latest = snapshot_latest(model_key=model_key)
    has_embeddings = Embedding.objects.filter(model_key=model_key).exists()
    reason = None
    if latest is None and has_embeddings:
        reason = "no snapshot yet"
    elif latest is not None:
        try:
            snapshot_verify(file_path=latest.file_path, checksum=latest.checksum)
        except SnapshotCorruptError as exc:
            logger.error("SNAPSHOT UNUSABLE (found by reconcile): %s; rebuilding", exc.message)
            reason = exc.message
        if reason is None and compaction_needed(model_key=model_key):
            reason = "delta or orphans above the threshold"
    if reason is not None:
        report["build"] = {"reason": reason, **index_build(model_key=model_key, force=True)}
    report["pruned"] = snapshot_files_prune(model_key=model_key, keep=snapshot_paths_kept(model_key=model_key))


def _requeue(ids: list[int], model_key: str | None) -> int:
    image_embedding_enqueue(image_ids=ids, model_key=model_key, at_once=True)
    # Touching updated_at stops the next reconcile from enqueuing them again before they had a chance to run.
    Image.objects.filter(id__in=ids).update(updated_at=timezone.now())
    return len(ids)


def index_reconcile(*, model_key: str | None = None) -> dict[str, Any]:
    """Repair drift between the catalogue and the index; safe to run any time, any number of times.

    * ``pending`` images untouched for ``SEMSEARCH_PENDING_REQUEUE_MINUTES`` are re-enqueued for embedding;
    * ``ready`` images without an embedding for the active model are re-enqueued (else they cannot be found);
    * the active snapshot is rebuilt if missing, corrupt, behind by more than the delta threshold, or holding too
      many deleted images (orphans); stale temp files and old snapshot files are removed.
    ``model_key`` defaults to the active model. Single-flight (a lock); returns a report of what it did. (The
    periodic task also advances a model switch: ``search.services.models.reconcile_run``.)
    """
    with maintenance_lock(name="index-reconcile") as held:
        if not held:
            return {"status": "busy"}
        model_key = model_key or active_model_key()
        cutoff = timezone.now() - timedelta(minutes=int(settings.SEMSEARCH_PENDING_REQUEUE_MINUTES))
        stale = list(
            Image.objects.filter(status=ImageStatus.PENDING, updated_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:REQUEUE_MAX]
        )
        unindexed = list(images_missing_embedding(model_key=model_key)[:REQUEUE_MAX])
        report: dict[str, Any] = {
            "status": "done",
            "model_key": model_key,
            "requeued_pending": _requeue(stale, None),
            "requeued_unindexed": _requeue(unindexed, model_key),
        }
        _snapshot_repair(model_key, report)
        if stale or unindexed or report.get("build"):
            logger.info("reconcile: %s", report)
        return report

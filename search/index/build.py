"""Building snapshots from the ``Embedding`` table: plan, train, fill, tune, write atomically, record the version."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from search.models import Embedding, IndexSnapshot
from search.state import snapshot_latest, snapshots_newest_first

from .fallback import exact_files_prune
from .kinds import IndexPlan, index_create, index_plan
from .locks import maintenance_lock
from .storage import snapshot_files_prune, snapshot_write
from .streamed import BuiltIndex, index_stream
from .tuning import params_tune, tuning_truths
from .vectors import last_embedding_id, vectors_load

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 2  # the active file and the one before it stay on disk


def build_lock_name(model_key: str) -> str:
    return f"index-build:{model_key}"


def index_settings() -> dict[str, Any]:
    """The build settings in effect (memory budget in bytes, recall target, Flat limit)."""
    return {
        "memory_budget_bytes": int(settings.SEMSEARCH_INDEX_MEMORY_BUDGET_MB) * 1024 * 1024,
        "recall_target": float(settings.SEMSEARCH_INDEX_RECALL_TARGET),
        "flat_max": int(settings.SEMSEARCH_INDEX_FLAT_MAX_VECTORS),
    }


def snapshot_is_current(*, model_key: str) -> bool:
    """True when the newest snapshot holds exactly the embeddings the table has (none added or removed since)."""
    latest = snapshot_latest(model_key=model_key)
    if latest is None:
        return False
    embeddings = Embedding.objects.filter(model_key=model_key)
    newer = embeddings.filter(id__gt=latest.watermark).exists()
    return not newer and embeddings.filter(id__lte=latest.watermark).count() == latest.vector_count


def snapshot_build(*, model_key: str) -> IndexSnapshot | None:
    """Build, tune, write and record a snapshot of ``model_key``'s embeddings up to the highest id stored now (the
    watermark: embeddings added during the build are the next delta); None when there are none. Caller holds the
    build lock.

    The compressed tier streams the vectors (``streamed.index_stream``: memory ≈ the index being built + O(chunk),
    never all vectors); the smaller tiers, whose index holds the raw vectors anyway, read them all
    (``vectors_load``: at most about twice the memory budget while the index is filled). Side effects: one new
    file under ``INDEX_ROOT``, one new ``IndexSnapshot`` row (the active version from the moment it commits),
    older files beyond the last ``KEEP_VERSIONS`` and the exact fallback's files removed.
    """
    started = time.perf_counter()
    config = index_settings()
    watermark = last_embedding_id(model_key=model_key)
    count = Embedding.objects.filter(model_key=model_key, id__lte=watermark).count()
    if count == 0:
        return None
    dimension = _dimension_of(model_key)
    plan = index_plan(count=count, dimension=dimension, memory_budget_bytes=config["memory_budget_bytes"],
                      flat_max=config["flat_max"])  # fmt: skip
    if plan.kind == "ivfpq":
        built = index_stream(model_key=model_key, plan=plan, dimension=dimension, upto_id=watermark)
    else:
        built = _in_memory(model_key=model_key, plan=plan, dimension=dimension, upto_id=watermark)
    if len(built.labels) == 0:
        return None
    params, recall = params_tune(index=built.index, plan=plan, labels=built.labels, truths=built.truths,
                                 recall_target=config["recall_target"])  # fmt: skip
    latest = IndexSnapshot.objects.filter(model_key=model_key).aggregate(v=Max("version"))["v"] or 0
    version = latest + 1
    snapshot_files_prune(model_key=model_key, keep=snapshot_paths_kept(model_key=model_key), temp_older_than_s=0)
    relative, checksum = snapshot_write(index=built.index, ids=built.labels, model_key=model_key, version=version)
    with transaction.atomic():
        snapshot = IndexSnapshot.objects.create(
            model_key=model_key, version=version, file_path=relative, factory=plan.factory, params=params,
            vector_count=len(built.labels), dimension=dimension, watermark=watermark, recall_at_10=recall,
            checksum=checksum, build_seconds=time.perf_counter() - started,
        )  # fmt: skip
    snapshot_files_prune(model_key=model_key, keep=snapshot_paths_kept(model_key=model_key), temp_older_than_s=0)
    exact_files_prune(model_key=model_key)  # readers falling back still map theirs; the next fallback rewrites
    logger.info("built %s snapshot v%d: %s, %d vectors, recall@10 %s, params %s, %.1f s", model_key, version,
                plan.factory, len(built.labels), f"{recall:.3f}" if recall is not None else "n/a", params,
                snapshot.build_seconds)  # fmt: skip
    return snapshot


def _in_memory(*, model_key: str, plan: IndexPlan, dimension: int, upto_id: int) -> BuiltIndex:
    """The ``Flat`` and ``IVF,Flat`` tiers: every vector up to ``upto_id`` in memory, then ``index_create``."""
    data = vectors_load(model_key=model_key, upto_id=upto_id)
    vectors = data.vectors.reshape(data.count, dimension)
    index, labels = index_create(plan=plan, ids=data.ids, vectors=vectors)
    return BuiltIndex(index, labels, tuning_truths(ids=data.ids, vectors=vectors))


def _dimension_of(model_key: str) -> int:
    from .vectors import embedding_dimension

    return embedding_dimension(model_key=model_key) or 1


def snapshot_paths_kept(*, model_key: str) -> set[str]:
    """The files of the last ``KEEP_VERSIONS`` snapshots of ``model_key``: the ones pruning must leave alone."""
    rows = snapshots_newest_first(model_key=model_key)[:KEEP_VERSIONS]
    return {row.file_path for row in rows}


def index_build(*, model_key: str, force: bool = False) -> dict[str, Any]:
    """Build a new snapshot of ``model_key`` from every stored embedding, unless it is already current.

    Single-flight: returns ``{"status": "busy"}`` at once if another process holds the build lock. Idempotent:
    without ``force`` a snapshot that already holds exactly the stored embeddings is kept (``"current"``).
    Above the memory budget the vectors are streamed, never all in memory (``snapshot_build``).
    Returns ``{"status": "built", "version", "factory", "count", "recall_at_10", "seconds"}`` otherwise.
    """
    with maintenance_lock(name=build_lock_name(model_key)) as held:
        if not held:
            logger.info("another process is building the %s snapshot; skipping", model_key)
            return {"status": "busy", "model_key": model_key}
        if not force and snapshot_is_current(model_key=model_key):
            return {"status": "current", "model_key": model_key}
        snapshot = snapshot_build(model_key=model_key)
        if snapshot is None:
            return {"status": "empty", "model_key": model_key}
        return {
            "status": "built", "model_key": model_key, "version": snapshot.version, "factory": snapshot.factory,
            "count": snapshot.vector_count, "recall_at_10": snapshot.recall_at_10, "seconds": snapshot.build_seconds,
        }  # fmt: skip

"""Switching the embedding model without downtime: register, re-embed in the background, activate in one step.

While a ``building`` model is re-embedded, searches keep using the ``active`` one. ``model_switch_step`` (run by a
task every few seconds and by the periodic reconcile) enqueues embedding of images the new model lacks, and when
it covers every ready image builds its snapshot and flips the two ``SearchModel`` rows in one transaction. The old
model's embeddings and snapshots stay until ``model_remove``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.dispatch import ENRICH_TAGS_RECOMPUTE, INDEX_MODEL_SWITCH_STEP, task_send, task_send_on_commit
from core.errors import DomainError
from images.services import image_embedding_enqueue
from search.embeddings import model_key_for
from search.index import index_build, index_reconcile
from search.index.storage import snapshot_files_prune
from search.models import Embedding, IndexSnapshot, SearchModel, SearchModelState
from search.state import (
    active_model_key,
    active_model_key_forget,
    configured_model_key,
    images_missing_embedding,
)

logger = logging.getLogger(__name__)


class ModelSwitchError(DomainError):
    code = "model_switch"


def _ensure_active_row() -> SearchModel:
    """The active ``SearchModel``; created from the settings' model when none was recorded yet."""
    active = SearchModel.objects.filter(state=SearchModelState.ACTIVE).first()
    if active is not None:
        return active
    key = configured_model_key()
    active, _ = SearchModel.objects.update_or_create(
        model_key=key,
        defaults={"model_id": settings.SEMSEARCH_MODEL_ID, "revision": settings.SEMSEARCH_MODEL_REVISION,
                  "state": SearchModelState.ACTIVE, "activated_at": timezone.now()},
    )  # fmt: skip
    return active


def model_switch_start(*, model_id: str, revision: str = "") -> SearchModel:
    """Register ``model_id`` as the model to switch to and start re-embedding in the background.

    Idempotent: starting the switch to the model already being built (or already active) changes nothing. A
    different model being built is replaced (its embeddings stay). Loads the model's key (not its weights).
    Side effect: enqueues ``index_model_switch_step`` on commit.
    """
    key = model_key_for(model_id, revision or None)
    with transaction.atomic():
        active = _ensure_active_row()
        if active.model_key == key:
            return active
        SearchModel.objects.filter(state=SearchModelState.BUILDING).exclude(model_key=key).update(
            state=SearchModelState.RETIRED
        )
        target, _ = SearchModel.objects.update_or_create(
            model_key=key, defaults={"model_id": model_id, "revision": revision, "state": SearchModelState.BUILDING}
        )
        cache.delete(_fanout_key(key))
        task_send_on_commit(INDEX_MODEL_SWITCH_STEP)
    logger.info("model switch started: %s -> %s", active.model_key, key)
    return target


def _fanout_key(model_key: str) -> str:
    return f"semsearch:switch-fanout:{model_key}"


def switch_missing(*, model_key: str) -> list[int]:
    """Ids of ready images without an embedding for ``model_key`` (what a switch still has to embed)."""
    return list(images_missing_embedding(model_key=model_key))


def model_switch_step() -> dict[str, Any]:
    """Advance the switch in progress, if any. Idempotent and safe to run concurrently with itself.

    Enqueues embedding of images the new model still lacks (again only after ``SEMSEARCH_PENDING_REQUEUE_MINUTES``,
    in case tasks were lost); once none is missing, builds the new model's snapshot and activates it in one
    transaction, re-checking coverage inside it. Returns ``{"status": "idle" | "embedding" | "activated" | ...}``.
    """
    target = SearchModel.objects.filter(state=SearchModelState.BUILDING).first()
    if target is None:
        return {"status": "idle"}
    key = target.model_key
    missing = switch_missing(model_key=key)
    if missing:
        enqueued = 0
        if cache.add(_fanout_key(key), 1, timeout=int(settings.SEMSEARCH_PENDING_REQUEUE_MINUTES) * 60):
            image_embedding_enqueue(image_ids=missing, model_key=key, at_once=True)
            enqueued = len(missing)
        return {"status": "embedding", "model_key": key, "missing": len(missing), "enqueued": enqueued}
    build = index_build(model_key=key)
    if build["status"] == "busy":
        return {"status": "building", "model_key": key}
    with transaction.atomic():
        if switch_missing(model_key=key):
            return {"status": "embedding", "model_key": key, "missing": "new images arrived"}
        if IndexSnapshot.objects.filter(model_key=key).exists() or not Embedding.objects.filter(model_key=key).exists():
            SearchModel.objects.filter(state=SearchModelState.ACTIVE).update(state=SearchModelState.RETIRED)
            SearchModel.objects.filter(pk=target.pk).update(state=SearchModelState.ACTIVE, activated_at=timezone.now())
        else:
            return {"status": "building", "model_key": key}
    active_model_key_forget()
    task_send(ENRICH_TAGS_RECOMPUTE, model_key=key)  # automatic tags follow the model that now serves searches
    logger.info("model switch complete: %s is now active", key)
    return {"status": "activated", "model_key": key}


def model_remove(*, model_key: str) -> dict[str, int]:
    """Delete a retired model's embeddings, snapshot rows and files. Refuses the active or building model."""
    row = SearchModel.objects.filter(model_key=model_key).first()
    if model_key == active_model_key() or (row is not None and row.state != SearchModelState.RETIRED):
        raise ModelSwitchError(f"{model_key} is {row.state if row else 'active'}; only a retired model can be removed")
    with transaction.atomic():
        embeddings, _ = Embedding.objects.filter(model_key=model_key).delete()
        snapshots, _ = IndexSnapshot.objects.filter(model_key=model_key).delete()
        SearchModel.objects.filter(model_key=model_key).delete()
    files = snapshot_files_prune(model_key=model_key, keep=set(), temp_older_than_s=0)
    return {"embeddings": embeddings, "snapshots": snapshots, "files": len(files)}


def model_switch_status() -> list[dict[str, Any]]:
    """Every registered model with its state and how many ready images it still lacks."""
    rows = []
    for model in SearchModel.objects.order_by("-state", "created_at"):
        rows.append({"model_key": model.model_key, "model_id": model.model_id, "state": model.state,
                     "missing": len(switch_missing(model_key=model.model_key)),
                     "embeddings": Embedding.objects.filter(model_key=model.model_key).count()})  # fmt: skip
    return rows


def reconcile_run() -> dict[str, Any]:
    """The periodic repair (Celery beat): ``index_reconcile`` of the active model, then one model-switch step.

    Idempotent; both halves are safe to run concurrently with themselves. Returns the reconcile's report with the
    step's result under ``switch``.
    """
    report = index_reconcile()
    report["switch"] = model_switch_step()
    return report

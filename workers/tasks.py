"""Celery tasks: thin wrappers that receive ids and call services.

Every task acknowledges late (a killed worker's message is redelivered), is idempotent (safe to run twice), and
retries database, broker and model-loading errors with exponential backoff. Index maintenance is single-flight
through a lock (see ``search.index.locks``), so a redelivered build never runs beside the original. Each task is
registered under the name ``core.dispatch`` declares, which is how the lower layers enqueue it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import dispatch
from search.embeddings import ModelUnavailableError
from search.index import compaction_signal
from search.index import index_build as build
from search.index import index_compact as compact
from search.services.embedding import embedding_compute
from search.services.models import model_switch_step, reconcile_run
from search.state import active_model_key

logger = logging.getLogger(__name__)

RETRYABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, ModelUnavailableError)
RETRY: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": RETRYABLE,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}
SWITCH_STEP_SECONDS = 5


@shared_task(name=dispatch.EMBED_IMAGES, **RETRY)
def embed_images(image_ids: list[int], model_key: str | None = None) -> dict[str, Any]:
    """Embed these images (default: with the active model); enqueue a compaction when the delta grew large."""
    result = embedding_compute(image_ids=image_ids, model_key=model_key)
    if result["embedded"] and compaction_signal(model_key=result["model_key"]):
        dispatch.task_send(dispatch.INDEX_COMPACT, model_key=result["model_key"])
    result.pop("failures", None)
    return result


@shared_task(name=dispatch.INDEX_BUILD, **RETRY)
def index_build(model_key: str | None = None, force: bool = False) -> dict[str, Any]:
    """Build a snapshot of ``model_key`` (default: the active model); single-flight, skipped when current."""
    return build(model_key=model_key or active_model_key(), force=force)


@shared_task(name=dispatch.INDEX_COMPACT, **RETRY)
def index_compact(model_key: str | None = None) -> dict[str, Any]:
    """Fold the delta into a new snapshot if it passed the threshold."""
    return compact(model_key=model_key or active_model_key())


@shared_task(name=dispatch.INDEX_RECONCILE, **RETRY)
def index_reconcile() -> dict[str, Any]:
    """Periodic (Celery beat): repair drift between catalogue and index; advance a model switch."""
    return reconcile_run()


@shared_task(name=dispatch.INDEX_MODEL_SWITCH_STEP, **RETRY)
def index_model_switch_step() -> dict[str, Any]:
    """Advance the model switch in progress; re-schedules itself every few seconds until it completes."""
    result = model_switch_step()
    if result["status"] in ("embedding", "building"):
        dispatch.task_send(dispatch.INDEX_MODEL_SWITCH_STEP, countdown=SWITCH_STEP_SECONDS)
    return result

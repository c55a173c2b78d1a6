"""Celery tasks: thin wrappers that receive ids and call services.

Every task acknowledges late (a killed worker's message is redelivered), is idempotent (safe to run twice), and
retries database, broker and model-loading errors with exponential backoff. Index maintenance is single-flight
through a lock (see ``search.index.locks``), so a redelivered build never runs beside the original.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from search.embeddings.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

RETRYABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, ModelUnavailableError)
RETRY = {
    "acks_late": True,
    "autoretry_for": RETRYABLE,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}
SWITCH_STEP_SECONDS = 5


@shared_task(**RETRY)
def embed_images(image_ids: list[int], model_key: str | None = None) -> dict[str, Any]:
    """Embed these images (default: with the active model); enqueue a compaction when the delta grew large."""
    from search.index.maintenance import compaction_signal
    from search.services.embedding import embedding_compute

    result = embedding_compute(image_ids=image_ids, model_key=model_key)
    if result["embedded"] and compaction_signal(model_key=result["model_key"]):
        index_compact.delay(model_key=result["model_key"])
    result.pop("failures", None)
    return result


@shared_task(**RETRY)
def index_build(model_key: str | None = None, force: bool = False) -> dict[str, Any]:
    """Build a snapshot of ``model_key`` (default: the active model); single-flight, skipped when current."""
    from search.index import index_build as build
    from search.services.embedding import active_model_key

    return build(model_key=model_key or active_model_key(), force=force)


@shared_task(**RETRY)
def index_compact(model_key: str | None = None) -> dict[str, Any]:
    """Fold the delta into a new snapshot if it passed the threshold."""
    from search.index.maintenance import index_compact as compact
    from search.services.embedding import active_model_key

    return compact(model_key=model_key or active_model_key())


@shared_task(**RETRY)
def index_reconcile() -> dict[str, Any]:
    """Periodic (Celery beat): repair drift between catalogue and index; advance a model switch."""
    from search.index.maintenance import index_reconcile as reconcile

    return reconcile()


@shared_task(**RETRY)
def index_model_switch_step() -> dict[str, Any]:
    """Advance the model switch in progress; re-schedules itself every few seconds until it completes."""
    from search.services.models import model_switch_step

    result = model_switch_step()
    if result["status"] in ("embedding", "building"):
        index_model_switch_step.apply_async(countdown=SWITCH_STEP_SECONDS)
    return result

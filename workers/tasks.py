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
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import dispatch
from images.services.ocr import OcrUnavailableError
from images.services.picture_text import picture_text_compute, picture_text_should_wait
from search.embeddings import ModelUnavailableError
from search.enrichment import autotags_compute, autotags_recompute
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
# OCR is optional: a missing engine is logged and the message dropped (``/readyz`` says why), never retried forever.
ENRICH_RETRY: dict[str, Any] = {**RETRY, "max_retries": 3}
OCR_DEFER_SECONDS = 5
OCR_MAX_DEFERRALS = 120  # ten minutes of embedding backlog; then the text is read regardless


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


@shared_task(name=dispatch.ENRICH_OCR, **ENRICH_RETRY)
def enrich_ocr(image_ids: list[int], force: bool = False, deferrals: int = 0) -> dict[str, Any]:
    """Read the text in these pictures (``enrich`` queue); a picture that fails gets a failed text row, no more.
    While images wait for their embedding — checked before every picture — the task sends the pictures it has not
    read yet again a few seconds later (at most ``OCR_MAX_DEFERRALS`` times), so reading text never takes the CPU
    from making images searchable for longer than one picture."""
    may_defer = deferrals < OCR_MAX_DEFERRALS
    if may_defer and picture_text_should_wait():
        return _ocr_defer(image_ids, force=force, deferrals=deferrals, result={"read": 0, "failed": 0, "skipped": 0})
    try:
        result = picture_text_compute(image_ids=image_ids, force=force, yield_to_embedding=may_defer)
    except OcrUnavailableError as exc:
        logger.warning("OCR skipped for %d image(s): %s", len(image_ids), exc)
        return {"read": 0, "failed": 0, "skipped": len(image_ids), "unavailable": str(exc)}
    left = result.pop("deferred_ids")
    return _ocr_defer(left, force=force, deferrals=deferrals, result=result) if left else result


def _ocr_defer(image_ids: list[int], *, force: bool, deferrals: int, result: dict[str, Any]) -> dict[str, Any]:
    dispatch.task_send(dispatch.ENRICH_OCR, countdown=OCR_DEFER_SECONDS, image_ids=list(image_ids), force=force,
                       deferrals=deferrals + 1)  # fmt: skip
    return {**result, "deferred": len(image_ids)}


@shared_task(name=dispatch.ENRICH_TAGS, **ENRICH_RETRY)
def enrich_tags(image_ids: list[int]) -> dict[str, Any]:
    """Re-propose the automatic tags of these images from their stored vectors of the active model."""
    if not settings.SEMSEARCH_AUTOTAGS:
        return {"proposed": 0, "skipped": len(image_ids)}
    return {"proposed": autotags_compute(image_ids=image_ids)}


@shared_task(name=dispatch.ENRICH_TAGS_RECOMPUTE, **ENRICH_RETRY)
def enrich_tags_recompute(model_key: str | None = None) -> dict[str, Any]:
    """After a model switch: re-propose every ready image's automatic tags with the now active model's vectors."""
    if not settings.SEMSEARCH_AUTOTAGS:
        return {"proposed": 0, "skipped": "SEMSEARCH_AUTOTAGS is off"}
    return autotags_recompute(model_key=model_key)

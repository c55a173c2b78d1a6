"""Read-only queries for the pages and the API: recent images, the active model's status, the system status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from core.queues import queue_depths
from images.models import AutoTag, AutoTagState, Image, ImageStatus, PictureText
from images.selectors import image_status_counts
from images.services.ocr import ocr_status
from search.embeddings import ModelUnavailableError, encoder_status
from search.models import Embedding
from search.state import active_model, snapshot_latest

PROGRESS_SAMPLE = 2000  # newest embeddings looked at for the rate


def images_recent(*, limit: int) -> list[Image]:
    """The newest ``limit`` ready images (for the search page before a query). One query."""
    return list(
        Image.objects.filter(status=ImageStatus.READY).select_related("uploader").order_by("-created_at", "-id")[:limit]
    )


def image_enrichment(*, image: Image) -> dict[str, Any]:
    """``picture_text`` (the ``PictureText`` row or None) and ``auto_tags`` (best first, rejected ones last) of
    ``image``, for its page. Two queries."""
    text = PictureText.objects.filter(image=image).first()
    tags = sorted(AutoTag.objects.filter(image=image), key=lambda t: (t.state == AutoTagState.REJECTED, -t.confidence))
    return {"picture_text": text, "auto_tags": tags}


def active_model_status() -> dict[str, Any]:
    """``encoder_status`` of the model searches use (``active_model``: the same id and revision they load); a
    configured model whose key cannot be known (its folder is missing) is reported with ``model_key`` None."""
    try:
        active = active_model()
    except ModelUnavailableError:
        return encoder_status(settings.SEMSEARCH_MODEL_ID, settings.SEMSEARCH_MODEL_REVISION)
    return encoder_status(active.model_id, active.revision)


def embedding_progress(*, model_key: str, pending: int) -> dict[str, Any]:
    """How fast ``model_key`` embeddings are being stored (images/s over the last minute, counted among the newest
    ``PROGRESS_SAMPLE`` rows: two indexed queries) and the estimated seconds until ``pending`` images are done (None
    when nothing was embedded in the last minute)."""
    now = timezone.now()
    newest = Embedding.objects.filter(model_key=model_key).order_by("-id").values_list("id", flat=True).first()
    rate = 0.0
    if newest is not None:
        recent = Embedding.objects.filter(
            model_key=model_key, id__gt=newest - PROGRESS_SAMPLE, created_at__gte=now - timedelta(seconds=60)
        ).aggregate(count=Count("id"), oldest=Min("created_at"))
        if recent["count"]:
            rate = recent["count"] / max((now - recent["oldest"]).total_seconds(), 1.0)
    eta = round(pending / rate, 1) if rate > 0 and pending else (0.0 if not pending else None)
    return {"images_per_s": round(rate, 2), "pending": pending, "eta_seconds": eta}


def system_status() -> dict[str, Any]:
    """Model, index, image counts, embedding progress, queue depths and enrichment (OCR available or why not);
    never raises because one part is unavailable."""
    model = active_model_status()
    snapshot = snapshot_latest(model_key=model["model_key"])
    counts = image_status_counts()
    return {
        "model": model,
        "index": {
            "version": snapshot.version if snapshot else None,
            "factory": snapshot.factory if snapshot else None,
            "vector_count": snapshot.vector_count if snapshot else 0,
            "recall_at_10": snapshot.recall_at_10 if snapshot else None,
            "built_at": snapshot.created_at.isoformat() if snapshot else None,
        },
        "images": counts,
        "embedding": embedding_progress(model_key=model["model_key"], pending=counts[ImageStatus.PENDING]),
        "queues": queue_depths(),
        "enrichment": {
            "ocr": ocr_status(),
            "autotags": {"enabled": settings.SEMSEARCH_AUTOTAGS, "vocabulary": settings.SEMSEARCH_AUTOTAG_VOCABULARY},
        },
    }

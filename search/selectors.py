"""Read-only queries for the pages and the API: recent images, the active model's status, the system status."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from core.queues import queue_depths
from images.models import AutoTag, AutoTagState, Image, ImageStatus, PictureText
from images.selectors import image_status_counts
from images.services.ocr import ocr_status
from search.embeddings import encoder_status
from search.state import active_model, snapshot_latest


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
    """``encoder_status`` of the model searches use (``active_model``: the same id and revision they load)."""
    active = active_model()
    return encoder_status(active.model_id, active.revision)


def system_status() -> dict[str, Any]:
    """Model, index, image counts, queue depths and enrichment (OCR available or why not); never raises because
    one part is unavailable."""
    model = active_model_status()
    snapshot = snapshot_latest(model_key=model["model_key"])
    return {
        "model": model,
        "index": {
            "version": snapshot.version if snapshot else None,
            "factory": snapshot.factory if snapshot else None,
            "vector_count": snapshot.vector_count if snapshot else 0,
            "recall_at_10": snapshot.recall_at_10 if snapshot else None,
            "built_at": snapshot.created_at.isoformat() if snapshot else None,
        },
        "images": image_status_counts(),
        "queues": queue_depths(),
        "enrichment": {
            "ocr": ocr_status(),
            "autotags": {"enabled": settings.SEMSEARCH_AUTOTAGS, "vocabulary": settings.SEMSEARCH_AUTOTAG_VOCABULARY},
        },
    }

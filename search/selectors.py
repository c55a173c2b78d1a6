"""Read-only queries for the pages and the API: recent images, the active model's status, the system status."""

from __future__ import annotations

from typing import Any

from core.queues import queue_depths
from images.models import Image, ImageStatus
from images.selectors import image_status_counts
from search.embeddings import encoder_status
from search.state import active_model, snapshot_latest


def images_recent(*, limit: int) -> list[Image]:
    """The newest ``limit`` ready images (for the search page before a query). One query."""
    return list(
        Image.objects.filter(status=ImageStatus.READY).select_related("uploader").order_by("-created_at", "-id")[:limit]
    )


def active_model_status() -> dict[str, Any]:
    """``encoder_status`` of the model searches use (``active_model``: the same id and revision they load)."""
    active = active_model()
    return encoder_status(active.model_id, active.revision)


def system_status() -> dict[str, Any]:
    """Model, index, image counts and queue depths; never raises because one part is unavailable."""
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
    }

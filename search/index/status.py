"""Read-only index health: the ``index_status`` command, ``/api/v1/status`` and the ``/readyz`` probe."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from images.models import Image, ImageStatus
from search.models import Embedding
from search.state import active_model_key, snapshot_latest

from .build import index_settings
from .reader import served_snapshot
from .storage import index_root


def index_status(model_key: str | None = None) -> dict[str, Any]:
    """Model, snapshot version, factory, vector count, delta size, recall and image counts; read-only.

    ``served`` describes what this process has in memory (None until it has searched this model).
    """
    model_key = model_key or active_model_key()
    latest = snapshot_latest(model_key=model_key)
    embeddings = Embedding.objects.filter(model_key=model_key)
    watermark = latest.watermark if latest else 0
    counts = dict.fromkeys(ImageStatus.values, 0)
    for row in Image.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    served = served_snapshot(model_key=model_key)
    return {
        "model_key": model_key,
        "version": latest.version if latest else None,
        "factory": latest.factory if latest else None,
        "params": latest.params if latest else {},
        "count": latest.vector_count if latest else 0,
        "dimension": latest.dimension if latest else None,
        "watermark": watermark,
        "delta": embeddings.filter(id__gt=watermark).count(),
        "embeddings": embeddings.count(),
        "recall_at_10": latest.recall_at_10 if latest else None,
        "build_seconds": latest.build_seconds if latest else None,
        "built_at": latest.created_at.isoformat() if latest else None,
        "images": {**counts, "total": sum(counts.values())},
        "pending": counts[ImageStatus.PENDING],
        "failed": counts[ImageStatus.FAILED],
        "served": None
        if served is None
        else {
            "version": served.version,
            "factory": served.factory,
            "fallback": served.index is None,
            "broken_version": served.broken_version,
            "count": served.count,
        },
    }


def index_status_for_readiness() -> str | None:
    """None when searches of the active model can be answered (a snapshot file is present, or the catalogue is
    small enough for the exact fallback); else a one-line reason. Cheap: two indexed queries and one ``stat``.
    """
    model_key = active_model_key()
    served = served_snapshot(model_key=model_key)
    if served is not None and served.index is not None:
        return None
    latest = snapshot_latest(model_key=model_key)
    if latest is not None and (index_root() / latest.file_path).is_file():
        return None
    count = Embedding.objects.filter(model_key=model_key).count()
    if count <= index_settings()["flat_max"]:
        return None  # exact search over the stored vectors is fast enough meanwhile
    if latest is None:
        return f"no snapshot of {model_key} yet ({count} embeddings); one is being built"
    return f"snapshot v{latest.version} of {model_key} is missing; it is being rebuilt from {count} embeddings"

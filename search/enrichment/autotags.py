"""Automatic tags from stored vectors: back-fill, re-runs and after a model switch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from images.models import ImageStatus
from search.enrichment.tagging import autotags_store
from search.models import Embedding
from search.state import active_model_key

CHUNK = 512


def autotags_compute(*, image_ids: Sequence[int], model_key: str | None = None) -> int:
    """(Re)propose tags for these images from their stored vectors of ``model_key`` (default: the active model).

    Idempotent; images without such a vector are skipped. Returns how many tags were proposed.
    """
    key = model_key or active_model_key()
    proposed = 0
    wanted = list(dict.fromkeys(int(i) for i in image_ids))
    for start in range(0, len(wanted), CHUNK):
        rows = list(Embedding.objects.filter(model_key=key, image_id__in=wanted[start : start + CHUNK])
                    .values_list("image_id", "vector"))  # fmt: skip
        if rows:
            vectors = np.stack([np.frombuffer(bytes(vector), dtype="<f4") for _, vector in rows])
            proposed += autotags_store(model_key=key, image_ids=[i for i, _ in rows], vectors=vectors)
    return proposed


def autotags_recompute(
    *, model_key: str | None = None, progress: Callable[[int], None] | None = None
) -> dict[str, int | str]:
    """Re-propose the tags of every ready image with the vectors of ``model_key`` (default: the active model), as
    after a model switch. Idempotent; reviewed tags keep their state. ``progress(n)`` is called after each chunk."""
    key = model_key or active_model_key()
    ids = list(
        Embedding.objects.filter(model_key=key, image__status=ImageStatus.READY)
        .order_by("image_id")
        .values_list("image_id", flat=True)
    )
    proposed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        proposed += autotags_compute(image_ids=chunk, model_key=key)
        if progress is not None:
            progress(len(chunk))
    return {"model_key": key, "images": len(ids), "proposed": proposed}

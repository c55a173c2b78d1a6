"""Reading stored vectors (the ``Embedding`` table) as numpy arrays: whole models, deltas, or chosen images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import Max

from search.models import Embedding

CHUNK = 5000


@dataclass(frozen=True)
class VectorSet:
    """Image ids (int64) and their vectors (float32, one row each); ``last_embedding_id`` is the highest row read."""

    ids: np.ndarray
    vectors: np.ndarray
    last_embedding_id: int

    @property
    def count(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dimension(self) -> int | None:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 and self.vectors.shape[1] else None


def _empty(after_id: int, dimension: int = 0) -> VectorSet:
    return VectorSet(np.empty(0, dtype=np.int64), np.empty((0, dimension), dtype=np.float32), after_id)


def vectors_load(*, model_key: str, after_id: int = 0, upto_id: int | None = None) -> VectorSet:
    """Every embedding of ``model_key`` with ``after_id < id <= upto_id``, in embedding-id order.

    Reads in keyset-paginated chunks so memory stays at one copy of the vectors; read-only.
    """
    ids: list[int] = []
    blobs: list[bytes] = []
    last = after_id
    dimension = 0
    while True:
        query = Embedding.objects.filter(model_key=model_key, id__gt=last)
        if upto_id is not None:
            query = query.filter(id__lte=upto_id)
        rows = list(query.order_by("id").values_list("id", "image_id", "dimension", "vector")[:CHUNK])
        if not rows:
            break
        for embedding_id, image_id, dim, vector in rows:
            if dimension and dim != dimension:
                raise ValueError(f"embeddings of {model_key} have mixed dimensions ({dimension} and {dim})")
            dimension = dim
            ids.append(image_id)
            blobs.append(bytes(vector))
            last = embedding_id
        if len(rows) < CHUNK:
            break
    if not ids:
        return _empty(after_id)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False).reshape(len(ids), dimension)
    return VectorSet(np.asarray(ids, dtype=np.int64), matrix, last)


def stored_vectors(*, model_key: str, image_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored vector of each given image for ``model_key``; images without one are absent. Read-only."""
    unique = list(dict.fromkeys(int(i) for i in image_ids))
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(unique), CHUNK):
        rows = Embedding.objects.filter(model_key=model_key, image_id__in=unique[start : start + CHUNK]).values_list(
            "image_id", "vector"
        )
        for image_id, vector in rows:
            found[image_id] = np.frombuffer(bytes(vector), dtype="<f4").astype(np.float32, copy=False)
    return found


def last_embedding_id(*, model_key: str) -> int:
    """The highest embedding id of ``model_key`` (0 when it has none)."""
    return Embedding.objects.filter(model_key=model_key).aggregate(m=Max("id"))["m"] or 0


def embedding_dimension(*, model_key: str) -> int | None:
    """The dimension of ``model_key``'s embeddings, or None when it has none."""
    return Embedding.objects.filter(model_key=model_key).values_list("dimension", flat=True).first()

"""Reading stored vectors (the ``Embedding`` table) as numpy arrays: whole models, deltas, or chosen images."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Max, Q

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


def vectors_load(
    *,
    model_key: str,
    after_id: int = 0,
    upto_id: int | None = None,
    seen_id: int | None = None,
    recent_since: datetime | None = None,
) -> VectorSet:
    """Every embedding of ``model_key`` with ``after_id < id <= upto_id``, in embedding-id order.

    With ``seen_id``, only rows above it or created since ``recent_since``: ids are allocated at insert but rows
    become visible at commit, so a row with a lower id can appear after a higher one was read. Reads in
    keyset-paginated chunks so memory stays at one copy of the vectors; read-only.
    """
    ids: list[int] = []
    blobs: list[bytes] = []
    last = after_id
    dimension = 0
    while True:
        query = Embedding.objects.filter(model_key=model_key, id__gt=last)
        if upto_id is not None:
            query = query.filter(id__lte=upto_id)
        if seen_id is not None:
            query = query.filter(Q(id__gt=seen_id) | Q(created_at__gte=recent_since))
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
        return _empty(max(after_id, seen_id or 0))
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32, copy=False).reshape(len(ids), dimension)
    return VectorSet(np.asarray(ids, dtype=np.int64), matrix, max(last, seen_id or 0))


def vectors_iter(
    *, model_key: str, upto_id: int, chunk: int = CHUNK, by_image: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(image ids, vectors)`` of ``model_key``'s embeddings with ``id <= upto_id``, ``chunk`` rows at a time in
    embedding-id order, or with ``by_image`` in ascending image-id order (the order of a snapshot's labels).
    Keyset pagination: memory stays at one chunk; read-only."""
    key = "image_id" if by_image else "id"
    last = 0
    while True:
        rows = list(
            Embedding.objects.filter(model_key=model_key, id__lte=upto_id, **{f"{key}__gt": last})
            .order_by(key)
            .values_list("id", "image_id", "dimension", "vector")[:chunk]
        )
        if not rows:
            return
        dimension = rows[0][2]
        if any(row[2] != dimension for row in rows):
            raise ValueError(f"embeddings of {model_key} have mixed dimensions")
        ids = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(bytes(row[3]) for row in rows), dtype="<f4").reshape(len(rows), dimension)
        yield ids, vectors.astype(np.float32, copy=False)
        last = rows[-1][1] if by_image else rows[-1][0]
        if len(rows) < chunk:
            return


def image_ids_upto(*, model_key: str, upto_id: int, chunk: int = 50_000) -> np.ndarray:
    """The image ids (int64, ascending) of ``model_key``'s embeddings with ``id <= upto_id``; no vectors are read
    (8 bytes an embedding, keyset-paginated). Read-only."""
    parts: list[np.ndarray] = []
    last = 0
    while True:
        rows = list(
            Embedding.objects.filter(model_key=model_key, id__lte=upto_id, image_id__gt=last)
            .order_by("image_id")
            .values_list("image_id", flat=True)[:chunk]
        )
        if rows:
            parts.append(np.asarray(rows, dtype=np.int64))
            last = rows[-1]
        if len(rows) < chunk:
            return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def vectors_of_images(
    *, model_key: str, image_ids: np.ndarray, dimension: int, upto_id: int, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """``(image ids, vectors)`` for the given images (ascending image id), read ``chunk`` ids at a time into one
    preallocated array; images whose embedding (``id <= upto_id``) is gone are absent. Read-only."""
    wanted = np.unique(np.asarray(image_ids, dtype=np.int64))
    found = np.empty(len(wanted), dtype=np.int64)
    out = np.empty((len(wanted), dimension), dtype=np.float32)
    filled = 0
    for start in range(0, len(wanted), chunk):
        batch = wanted[start : start + chunk].tolist()
        rows = (
            Embedding.objects.filter(model_key=model_key, id__lte=upto_id, image_id__in=batch)
            .order_by("image_id")
            .values_list("image_id", "dimension", "vector")
        )
        for image_id, dim, vector in rows:
            if dim != dimension:
                raise ValueError(f"embeddings of {model_key} have mixed dimensions ({dimension} and {dim})")
            found[filled] = image_id
            out[filled] = np.frombuffer(bytes(vector), dtype="<f4")
            filled += 1
    return found[:filled], out[:filled]


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

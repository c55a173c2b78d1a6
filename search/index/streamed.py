"""Building an index from the ``Embedding`` table without ever holding all its vectors (the compressed tier).

Three reads, none of them of every vector at once:

1. the image ids up to the watermark (8 bytes an embedding, no vectors), to draw two samples uniformly at random
   with fixed seeds: ``plan.train_size`` vectors to train on and up to ``SAMPLE_QUERIES`` tuning queries;
2. those samples' vectors, by image id, ``CHUNK`` ids a query (the ids are dropped once the samples are drawn);
3. every vector up to the watermark in ascending image-id order, ``CHUNK`` rows at a time (``vectors_iter``):
   each chunk is added to the index and to the queries' exact top-k (``TruthAccumulator``), then dropped; only
   the int64 image ids are kept (the snapshot's labels).

Peak memory ≈ the index being built (``plan.estimated_bytes``: codes, SQ8 refine codes, centroids) + 8 bytes an
embedding for the ids (16 while they are joined at the end) + the training sample while it trains
(``train_size·d·4`` bytes, at most 64·8,192 vectors: 1 GiB at 512-d, plus faiss's working copies of it; freed
before the first add) + O(chunk): one chunk of rows and vectors, the ``SAMPLE_QUERIES`` tuning queries and their
running top-k, and the snapshot writer's 1 MiB buffer. It never grows with the raw vectors (``count·d·4``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .kinds import IndexPlan, index_add, index_new, index_train
from .tuning import SAMPLE_QUERIES, Truth, accumulated_truths, tuning_accumulators
from .vectors import CHUNK, image_ids_upto, vectors_iter, vectors_of_images

TRAIN_SEED = 1234  # the seeds of index_create and tuning_truths, the in-memory path
QUERY_SEED = 7


@dataclass(frozen=True)
class BuiltIndex:
    """A filled index, the image id of each of its labels (ascending), and the exact truths to tune it on."""

    index: Any
    labels: np.ndarray
    truths: tuple[Truth, Truth] | None


def index_stream(*, model_key: str, plan: IndexPlan, dimension: int, upto_id: int) -> BuiltIndex:
    """Train and fill ``plan``'s index with ``model_key``'s embeddings with ``id <= upto_id``, streaming them.

    Deterministic for the same rows (fixed seeds). Read-only; raises ``ValueError`` on mixed dimensions.
    """
    ids = image_ids_upto(model_key=model_key, upto_id=upto_id, chunk=10 * CHUNK)
    index = index_new(plan=plan, dimension=dimension)
    if plan.kind != "flat" and len(ids):
        chosen = np.random.default_rng(TRAIN_SEED).choice(len(ids), size=min(plan.train_size, len(ids)), replace=False)
        _, sample = vectors_of_images(model_key=model_key, image_ids=ids[chosen], dimension=dimension,
                                      upto_id=upto_id, chunk=CHUNK)  # fmt: skip
        del chosen
        index_train(index=index, sample=sample)
        del sample
    queries, query_ids = _queries(model_key, ids, dimension, upto_id)
    accumulators = tuning_accumulators(queries=queries, query_ids=query_ids, count=len(ids))
    del ids  # the accumulators keep the queries; the labels are collected anew, in the order added
    parts: list[np.ndarray] = []
    for chunk_ids, vectors in vectors_iter(model_key=model_key, upto_id=upto_id, chunk=CHUNK, by_image=True):
        if vectors.shape[1] != dimension:
            raise ValueError(f"embeddings of {model_key} have mixed dimensions ({dimension} and {vectors.shape[1]})")
        index_add(index=index, vectors=vectors)
        for accumulator in accumulators:
            accumulator.add(ids=chunk_ids, vectors=vectors)
        parts.append(chunk_ids)
    labels = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return BuiltIndex(index, labels, accumulated_truths(accumulators) if len(labels) >= 2 else None)


def _queries(model_key: str, ids: np.ndarray, dimension: int, upto_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``SAMPLE_QUERIES`` stored vectors drawn at random from ``ids``, in the order drawn, with their ids."""
    drawn = ids[np.random.default_rng(QUERY_SEED).choice(len(ids), size=min(SAMPLE_QUERIES, len(ids)), replace=False)]
    found, vectors = vectors_of_images(model_key=model_key, image_ids=drawn, dimension=dimension, upto_id=upto_id,
                                       chunk=CHUNK)  # fmt: skip
    positions = np.searchsorted(found, drawn)
    present = positions < len(found)
    present[present] = found[positions[present]] == drawn[present]  # an image deleted since the ids were read
    return vectors[positions[present]], drawn[present]

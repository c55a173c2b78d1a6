"""Exact inner-product top-k over an in-memory matrix (numpy BLAS), and merging of ranked hit lists."""

from __future__ import annotations

import numpy as np

Hits = list[list[tuple[int, float]]]


def exact_topk(*, queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int) -> Hits:
    """Per query row, up to ``k`` ``(id, inner product)`` over ``vectors`` (rows labelled by ``ids``), best first."""
    if k <= 0 or vectors.shape[0] == 0:
        return [[] for _ in range(queries.shape[0])]
    scores = queries @ vectors.T  # float32 @ float32 stays float32
    kk = min(k, vectors.shape[0])
    if kk < vectors.shape[0]:
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        top = np.broadcast_to(np.arange(vectors.shape[0]), (queries.shape[0], vectors.shape[0]))
    hits: Hits = []
    for row, candidates in enumerate(top):
        picked = scores[row, candidates]
        order = np.argsort(-picked, kind="stable")
        hits.append([(int(ids[candidates[j]]), float(picked[j])) for j in order])
    return hits


def hits_merge(*, primary: Hits, newer: Hits, k: int) -> Hits:
    """Merge two ranked hit lists per query, best first, one entry per id; ``newer`` wins for an id in both
    (the delta holds the newer vector of an image re-embedded after the snapshot)."""
    merged: Hits = []
    for old_row, new_row in zip(primary, newer, strict=True):
        best = {image_id: score for image_id, score in old_row}
        best.update(new_row)
        merged.append(sorted(best.items(), key=lambda hit: (-hit[1], hit[0]))[:k])
    return merged

"""Recall measurement and search-parameter tuning at build time, against exact search on stored vectors.

Queries are a random sample of the stored vectors themselves; each query's own id is left out of both the truth
and the answer, so recall@10 measures the ten *other* nearest neighbours (a stored vector always finds itself).
Parameters are tuned on one half of the sample and the recorded recall is measured on the other half.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .kinds import IndexPlan, index_params_apply, index_query

logger = logging.getLogger(__name__)

NPROBES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
RERANKS = (4, 8, 16, 32)
SAMPLE_QUERIES = 400
K = 10
TUNE_MARGIN = 0.01  # tune a little above the target so recall on fresh queries does not land just under it


@dataclass(frozen=True)
class Truth:
    queries: np.ndarray
    query_ids: np.ndarray
    neighbours: list[np.ndarray]  # per query, the exact top-K ids excluding the query itself
    k: int


def truth_compute(*, ids: np.ndarray, vectors: np.ndarray, positions: np.ndarray, k: int = K) -> Truth:
    """Exact top-``k`` neighbours (self excluded) of the vectors at ``positions``, by a faiss Flat scan."""
    from .faiss_runtime import batch_blas

    k = min(k, len(ids) - 1)
    queries = np.ascontiguousarray(vectors[positions])
    # faiss.knn scans the caller's array in place (BLAS): no second copy of a million vectors.
    with batch_blas() as faiss:
        _, labels = faiss.knn(queries, np.ascontiguousarray(vectors), k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    neighbours = []
    for row, position in enumerate(positions):
        neighbour_positions = [p for p in labels[row] if p != position and p >= 0][:k]
        neighbours.append(ids[neighbour_positions])
    return Truth(queries, ids[positions], neighbours, k)


def recall_measure(*, index: Any, params: dict[str, Any], truth: Truth, rerank_source: Any = None) -> float:
    """Mean recall@k of ``index`` with ``params`` over ``truth``'s queries (self excluded)."""
    from .faiss_runtime import batch_blas

    index_params_apply(index=index, params=params)
    with batch_blas():
        hits = index_query(index=index, params=params, queries=truth.queries, k=truth.k + 1,
                           rerank_source=rerank_source)  # fmt: skip
    total = 0.0
    for row, query_id in enumerate(truth.query_ids):
        found = [image_id for image_id, _ in hits[row] if image_id != query_id][: truth.k]
        total += len(set(found) & set(truth.neighbours[row].tolist())) / max(truth.k, 1)
    return total / max(len(truth.query_ids), 1)


def memory_rerank_source(*, ids: np.ndarray, vectors: np.ndarray) -> Any:
    """A re-rank source over in-memory vectors (build time), equivalent to the stored vectors in the DB."""
    order = np.argsort(ids)
    sorted_ids = ids[order]

    def source(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = np.searchsorted(sorted_ids, candidates)
        positions = positions[positions < len(sorted_ids)]
        positions = positions[np.isin(sorted_ids[positions], candidates)]
        return sorted_ids[positions], vectors[order[positions]]

    return source


def params_tune(
    *, index: Any, plan: IndexPlan, ids: np.ndarray, vectors: np.ndarray, recall_target: float, seed: int = 7
) -> tuple[dict[str, Any], float | None]:
    """The cheapest search parameters reaching ``recall_target`` and the recall@10 measured with them.

    Returns ``({}, None)`` for fewer than two vectors (no neighbours to recall). Leaves the parameters applied.
    """
    if len(ids) < 2:
        return {}, None
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(ids), size=min(SAMPLE_QUERIES, len(ids)), replace=False)
    half = max(1, len(positions) // 2)
    tune = truth_compute(ids=ids, vectors=vectors, positions=positions[:half])
    check = truth_compute(ids=ids, vectors=vectors, positions=positions[half:]) if len(positions) > 1 else tune
    source = memory_rerank_source(ids=ids, vectors=vectors) if plan.kind == "ivfpq" else None
    if plan.kind == "flat":
        return {}, recall_measure(index=index, params={}, truth=check)
    nprobes = [n for n in NPROBES if n < plan.nlist] + [plan.nlist]
    reranks = RERANKS if plan.kind == "ivfpq" else (0,)
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for rerank in reranks:
        for nprobe in nprobes:
            params = {"nprobe": nprobe, **({"rerank": rerank} if rerank else {})}
            recall = recall_measure(index=index, params=params, truth=tune, rerank_source=source)
            if recall > best[0]:
                best = (recall, params)
            if recall >= min(1.0, recall_target + TUNE_MARGIN):
                break
        if best[0] >= min(1.0, recall_target + TUNE_MARGIN):
            break
    params = best[1]
    if best[0] < recall_target:
        logger.warning("%s reaches recall@10 %.3f at best (target %.2f); using %s", plan.factory, best[0],
                       recall_target, params)  # fmt: skip
    return params, recall_measure(index=index, params=params, truth=check, rerank_source=source)

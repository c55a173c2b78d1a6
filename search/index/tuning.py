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

from .kinds import IndexPlan, index_query

logger = logging.getLogger(__name__)

NPROBES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
# Refine tier: candidates re-scored with the SQ8 codes, per hit wanted. At 10M clustered vectors PQ64x8 alone held
# recall@10 at 0.90 with 32 (bench/results/index.json): the true neighbours were further down its list than that.
K_FACTORS = (2, 4, 8, 16, 32, 64, 128, 256)
PLATEAU_STEPS = 2  # probing more lists stops when this many steps in a row gain less than PLATEAU_GAIN
PLATEAU_GAIN = 0.002
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


class TruthAccumulator:
    """Exact top-``k`` of fixed queries over vectors that arrive in chunks (never all in memory at once).

    ``exclude`` holds, per query, an id left out of its answer (a stored vector used as a query finds itself;
    -1 for held-out queries). ``truth()`` gives the result once every chunk has been added.
    """

    def __init__(self, *, queries: np.ndarray, exclude: np.ndarray, k: int = K) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.exclude = np.asarray(exclude, dtype=np.int64)
        self.k = k
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(queries), k), -1, dtype=np.int64)

    def add(self, *, ids: np.ndarray, vectors: np.ndarray) -> None:
        from .faiss_runtime import batch_blas

        kk = min(self.k + 1, len(ids))
        with batch_blas() as faiss:
            scores, positions = faiss.knn(self.queries, np.ascontiguousarray(vectors), kk,
                                          metric=faiss.METRIC_INNER_PRODUCT)  # fmt: skip
        found = np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)
        scores = np.where((found == self.exclude[:, None]) | (found < 0), -np.inf, scores)
        all_scores = np.concatenate([self.scores, scores], axis=1)
        all_ids = np.concatenate([self.ids, found], axis=1)
        best = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(all_scores, best, axis=1)
        self.ids = np.take_along_axis(all_ids, best, axis=1)

    def truth(self) -> Truth:
        neighbours = [row[row >= 0] for row in self.ids]
        return Truth(self.queries, self.exclude, neighbours, self.k)


def recall_measure(
    *, index: Any, params: dict[str, Any], truth: Truth, labels: np.ndarray | None = None, rerank_source: Any = None
) -> float:
    """Mean recall@k of ``index`` with ``params`` over ``truth``'s queries (self excluded)."""
    from .faiss_runtime import batch_blas

    with batch_blas():
        hits = index_query(index=index, params=params, queries=truth.queries, k=truth.k + 1, labels=labels,
                           rerank_source=rerank_source)  # fmt: skip
    total = 0.0
    for row, query_id in enumerate(truth.query_ids):
        found = [image_id for image_id, _ in hits[row] if image_id != query_id][: truth.k]
        total += len(set(found) & set(truth.neighbours[row].tolist())) / max(truth.k, 1)
    return total / max(len(truth.query_ids), 1)


def tuning_truths(*, ids: np.ndarray, vectors: np.ndarray, seed: int = 7) -> tuple[Truth, Truth] | None:
    """Exact neighbours of up to ``SAMPLE_QUERIES`` random stored vectors, split in a tuning and a checking half.

    None for fewer than two vectors (no neighbours to recall).
    """
    if len(ids) < 2:
        return None
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(ids), size=min(SAMPLE_QUERIES, len(ids)), replace=False)
    half = max(1, len(positions) // 2)
    tune = truth_compute(ids=ids, vectors=vectors, positions=positions[:half])
    check = truth_compute(ids=ids, vectors=vectors, positions=positions[half:]) if len(positions) > 1 else tune
    return tune, check


def tuning_accumulators(*, queries: np.ndarray, query_ids: np.ndarray, count: int) -> list[TruthAccumulator]:
    """A tuning and a checking ``TruthAccumulator`` (first and second half of ``queries``, stored vectors with
    image ids ``query_ids``, each left out of its own answer) for a streamed build over ``count`` vectors: the
    streamed counterpart of ``tuning_truths``. Empty for fewer than two queries or vectors."""
    if count < 2 or len(queries) < 2:
        return []
    half = len(queries) // 2
    k = min(K, count - 1)
    return [TruthAccumulator(queries=queries[part], exclude=query_ids[part], k=k)
            for part in (slice(0, half), slice(half, None))]  # fmt: skip


def accumulated_truths(accumulators: list[TruthAccumulator]) -> tuple[Truth, Truth] | None:
    """The ``(tuning, checking)`` truths of ``tuning_accumulators`` once every vector was added (None if empty)."""
    if len(accumulators) != 2:
        return None
    return accumulators[0].truth(), accumulators[1].truth()


def params_tune(
    *, index: Any, plan: IndexPlan, labels: np.ndarray, truths: tuple[Truth, Truth] | None, recall_target: float
) -> tuple[dict[str, Any], float | None]:
    """The cheapest search parameters reaching ``recall_target`` on ``truths[0]`` and the recall@10 measured with
    them on ``truths[1]``; ``({}, None)`` without truths. ``labels``: the image id of each label of ``index``.

    IVF tunes ``nprobe``; the refine tier tunes ``k_factor`` (outer, ascending) and ``nprobe`` (inner). With a
    ``k_factor``, probing more lists stops once recall has plateaued (the candidates, not the lists, limit it):
    the next ``k_factor`` is tried instead.
    """
    if truths is None:
        return {}, None
    tune, check = truths
    if plan.kind == "flat":
        return {}, recall_measure(index=index, params={}, truth=check, labels=labels)
    nprobes = [n for n in NPROBES if n < plan.nlist] + [plan.nlist]
    k_factors = K_FACTORS if plan.kind == "ivfpq" else (0,)
    goal = min(1.0, recall_target + TUNE_MARGIN)
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for k_factor in k_factors:
        previous, flat_steps = -1.0, 0
        for nprobe in nprobes:
            params = {"nprobe": nprobe, **({"k_factor": k_factor} if k_factor else {})}
            recall = recall_measure(index=index, params=params, truth=tune, labels=labels)
            if recall > best[0]:
                best = (recall, params)
            if recall >= goal:
                break
            flat_steps = flat_steps + 1 if recall - previous < PLATEAU_GAIN else 0
            previous = recall
            if k_factor and flat_steps >= PLATEAU_STEPS:
                break
        if best[0] >= goal:
            break
    params = best[1]
    if best[0] < recall_target:
        logger.warning("%s reaches recall@10 %.3f at best (target %.2f); using %s", plan.factory, best[0],
                       recall_target, params)  # fmt: skip
    return params, recall_measure(index=index, params=params, truth=check, labels=labels)

"""Which faiss index to build for a vector count and memory budget, how to build it, and how to query it.

* ``Flat`` (exact) up to ``SEMSEARCH_INDEX_FLAT_MAX_VECTORS`` vectors (default 50k: ~10 ms a query at 512-d).
* ``IVF{nlist},Flat`` above that, with ``nlist ≈ 4·√n`` trained on ``64·nlist`` sampled vectors; ``nprobe`` is
  tuned at build time to reach the recall target. Memory ≈ raw vectors + ~56 bytes per vector of ids. HNSW is not
  used: on clustered CLIP-like data its recall stalls at 0.82–0.88 (HNSW32) and it builds 3x slower.
* ``OPQ{m},IVF{nlist},PQ{m}x{bits}`` (OPQ only with >= 10k training vectors) when the raw vectors exceed
  ``SEMSEARCH_INDEX_MEMORY_BUDGET_MB``: compressed codes are only a shortlist; the top ``k·rerank`` candidates are
  re-scored exactly with their stored vectors (``rerank`` tuned with ``nprobe``).

Every index is wrapped in ``IndexIDMap2`` so faiss ids are ``Image`` primary keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exact import Hits
from .faiss_runtime import faiss_team

RerankSource = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
ID_BYTES_PER_VECTOR = 56  # IVF list id + IndexIDMap2 forward id + reverse-map entry
ADD_CHUNK = 65_536


@dataclass(frozen=True)
class IndexPlan:
    kind: str  # "flat", "ivf" or "ivfpq"
    factory: str
    nlist: int = 0
    train_size: int = 0
    estimated_bytes: int = 0


def index_plan(*, count: int, dimension: int, memory_budget_bytes: int, flat_max: int) -> IndexPlan:
    """The index type and shape for ``count`` vectors of ``dimension`` under a memory budget. Pure function."""
    raw = count * dimension * 4
    flat_bytes = raw + count * 16
    if count <= flat_max and flat_bytes <= memory_budget_bytes:
        return IndexPlan("flat", "Flat", estimated_bytes=flat_bytes)
    nlist = max(1, min(round(4 * math.sqrt(count)), count // 39 or 1))
    train_size = min(count, 64 * nlist)
    ivf_bytes = raw + count * ID_BYTES_PER_VECTOR + nlist * dimension * 4
    if ivf_bytes <= memory_budget_bytes:
        return IndexPlan("ivf", f"IVF{nlist},Flat", nlist, train_size, ivf_bytes)
    per_vector = memory_budget_bytes / max(count, 1) - ID_BYTES_PER_VECTOR
    divisors = [m for m in (64, 48, 32, 16, 8, 4) if dimension % m == 0] or [1]
    m = next((m for m in divisors if m <= per_vector), divisors[-1])
    bits = max(4, min(8, int(math.log2(max(train_size, 16) / 39)))) if train_size < 256 * 39 else 8
    codes = count * (m * bits // 8 + ID_BYTES_PER_VECTOR) + nlist * dimension * 4 + dimension * dimension * 4
    # OPQ's rotation is trained with 256-centroid sub-quantizers: worth it (and affordable) only on a large sample.
    rotation = f"OPQ{m}," if train_size >= 256 * 39 else ""
    return IndexPlan("ivfpq", f"{rotation}IVF{nlist},PQ{m}x{bits}", nlist, train_size, codes)


def index_create(*, plan: IndexPlan, ids: np.ndarray, vectors: np.ndarray, seed: int = 1234) -> Any:
    """Train (on a random sample) and fill the planned index with ``vectors`` labelled by ``ids``."""
    from .faiss_runtime import faiss_module

    faiss = faiss_module()
    dimension = vectors.shape[1] if vectors.ndim == 2 else 0
    inner = faiss.index_factory(dimension, plan.factory, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexIDMap2(inner)
    inner.this.disown()
    index.own_fields = True
    if plan.kind == "ivfpq":
        # Polysemous training (a slow annealing of code order for Hamming pre-filtering) is on by default and can
        # take minutes; searches here never use Hamming filtering, they re-rank with the stored vectors.
        faiss.downcast_index(faiss.extract_index_ivf(inner)).do_polysemous_training = False
    with faiss_team(len(ids)):  # training and adding are batch work
        if plan.kind != "flat" and len(ids):
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(len(ids), size=min(plan.train_size, len(ids)), replace=False))
            index.train(np.ascontiguousarray(vectors[sample]))
        for start in range(0, len(ids), ADD_CHUNK):
            index.add_with_ids(
                np.ascontiguousarray(vectors[start : start + ADD_CHUNK]),
                np.ascontiguousarray(ids[start : start + ADD_CHUNK]),
            )
    return index


def index_params_apply(*, index: Any, params: dict[str, Any]) -> None:
    """Set search-time parameters (``nprobe``) on a loaded index; call before sharing it between threads."""
    if "nprobe" in params:
        from .faiss_runtime import faiss_module

        faiss_module().ParameterSpace().set_index_parameter(index, "nprobe", int(params["nprobe"]))


def _search_params(index: Any, params: dict[str, Any], allowed: np.ndarray | None) -> Any:
    from .faiss_runtime import faiss_module

    if allowed is None:
        return None
    faiss = faiss_module()
    selector = faiss.IDSelectorBatch(allowed)
    if "nprobe" not in params:
        return faiss.SearchParameters(sel=selector)
    # Only the probed lists are searched, so fewer allowed vectors lie in them: probe more, up to 8x the cost.
    fraction = min(1.0, allowed.size / max(index.ntotal, 1))
    nprobe = int(params["nprobe"]) * min(8, math.ceil(1 / fraction))
    nlist = faiss.extract_index_ivf(index).nlist
    search_params = faiss.SearchParametersIVF(sel=selector, nprobe=min(nlist, nprobe))
    search_params.referenced_selector = selector  # keep it alive as long as the parameters
    return search_params


def index_query(
    *,
    index: Any,
    params: dict[str, Any],
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    rerank_source: RerankSource | None = None,
) -> Hits:
    """Top ``k`` hits per query from a built index (restricted to ``allowed`` ids if given), best first.

    With ``params["rerank"]`` (compressed codes) the top ``k·rerank`` candidates are re-scored exactly with the
    vectors ``rerank_source`` returns for them.
    """
    rerank = int(params.get("rerank", 0))
    fetch = min(max(index.ntotal, 1), k * rerank if rerank else k)
    search_params = _search_params(index, params, allowed)
    with faiss_team(len(queries)):
        scores, labels = index.search(queries, fetch, params=search_params)
    if not rerank or rerank_source is None:
        return [[(int(i), float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0][:k]
                for row_s, row_i in zip(scores, labels, strict=True)]  # fmt: skip
    candidates = np.unique(labels[labels >= 0])
    found_ids, found_vectors = rerank_source(candidates)
    order = np.argsort(found_ids)
    found_ids, found_vectors = found_ids[order], found_vectors[order]
    hits: Hits = []
    for row, row_labels in enumerate(labels):
        wanted = row_labels[row_labels >= 0]
        positions = np.searchsorted(found_ids, wanted)
        valid = positions < len(found_ids)
        valid[valid] = found_ids[positions[valid]] == wanted[valid]
        positions = positions[valid]  # candidates whose stored vector vanished (image deleted) drop out
        exact = found_vectors[positions] @ queries[row]
        best = np.argsort(-exact, kind="stable")[:k]
        hits.append([(int(found_ids[positions[j]]), float(exact[j])) for j in best])
    return hits

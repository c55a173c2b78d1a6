"""Which faiss index to build for a vector count and memory budget, how to build it, and how to query it.

* ``Flat`` (exact) up to ``SEMSEARCH_INDEX_FLAT_MAX_VECTORS`` vectors (default 50k: ~10 ms a query at 512-d).
* ``IVF{nlist},Flat`` above that, with ``nlist ≈ 4·√n`` (at most ``NLIST_MAX``) trained on ``64·nlist`` sampled
  vectors; ``nprobe`` is tuned at build time to reach the recall target. Memory ≈ raw vectors + 16 bytes a vector
  (its label in the list, its image id). HNSW is not used: on clustered CLIP-like data its recall stalls at
  0.82–0.88 (HNSW32) and it builds 3x slower.
* ``OPQ{m},IVF{nlist},PQ{m}x{bits},Refine(SQ8)`` (OPQ only with >= 10k training vectors) when the raw vectors
  exceed ``SEMSEARCH_INDEX_MEMORY_BUDGET_MB``: the PQ codes make a shortlist of ``k·k_factor`` candidates, which
  are re-scored with 8-bit scalar-quantised copies of the vectors kept in the snapshot itself (``d`` bytes a
  vector); ``nprobe`` and ``k_factor`` are tuned together. Scores are then the SQ8 inner products (within ~1e-3
  of the exact ones).

Labels inside faiss are positions ``0..n-1`` in ascending image-id order; the snapshot stores the image id of each
position beside the index (``storage.py``), and ``index_query`` translates both ways. Snapshots of the earlier
layout (``IndexIDMap2``: labels are image ids, compressed codes re-ranked with stored vectors) still search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exact import Hits
from .faiss_runtime import faiss_module, faiss_team

RerankSource = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
ID_BYTES_PER_VECTOR = 16  # the label in an inverted list + the image id in the snapshot's ids section
NLIST_MAX = 8192  # k-means and list assignment cost grow with nlist: 4·√10M = 12,649 lists took ~2x as long
ADD_CHUNK = 65_536


@dataclass(frozen=True)
class IndexPlan:
    kind: str  # "flat", "ivf" or "ivfpq" (compressed codes + SQ8 refinement)
    factory: str
    nlist: int = 0
    train_size: int = 0
    estimated_bytes: int = 0


def index_plan(*, count: int, dimension: int, memory_budget_bytes: int, flat_max: int) -> IndexPlan:
    """The index type and shape for ``count`` vectors of ``dimension`` under a memory budget. Pure function."""
    raw = count * dimension * 4
    flat_bytes = raw + count * 8
    if count <= flat_max and flat_bytes <= memory_budget_bytes:
        return IndexPlan("flat", "Flat", estimated_bytes=flat_bytes)
    nlist = max(1, min(round(4 * math.sqrt(count)), NLIST_MAX, count // 39 or 1))
    train_size = min(count, 64 * nlist)
    centroids = nlist * dimension * 4
    ivf_bytes = raw + count * ID_BYTES_PER_VECTOR + centroids
    if ivf_bytes <= memory_budget_bytes:
        return IndexPlan("ivf", f"IVF{nlist},Flat", nlist, train_size, ivf_bytes)
    # About 8 dimensions a sub-quantizer: a shortlist good enough that k_factor stays small.
    m = next(m for m in (64, 48, 32, 16, 8, 4, 1) if dimension % m == 0 and m <= max(1, dimension // 4))
    bits = max(4, min(8, int(math.log2(max(train_size, 16) / 39)))) if train_size < 256 * 39 else 8
    codes = count * (m * bits // 8 + ID_BYTES_PER_VECTOR + dimension) + centroids + dimension * dimension * 4
    # OPQ's rotation is trained with 256-centroid sub-quantizers: worth it (and affordable) only on a large sample.
    rotation = f"OPQ{m}," if train_size >= 256 * 39 else ""
    return IndexPlan("ivfpq", f"{rotation}IVF{nlist},PQ{m}x{bits},Refine(SQ8)", nlist, train_size, codes)


def index_new(*, plan: IndexPlan, dimension: int) -> Any:
    """An empty, untrained index of the planned type (inner product; labels will be positions)."""
    faiss = faiss_module()
    index = faiss.index_factory(dimension, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "ivfpq":
        # Polysemous training (a slow annealing of code order for Hamming pre-filtering) is on by default and can
        # take minutes; searches here never use Hamming filtering, they refine with the SQ8 codes.
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
    return index


def index_train(*, index: Any, sample: np.ndarray) -> None:
    """Train ``index`` on ``sample`` (a no-op for Flat). Batch work: uses the build's thread team."""
    if not index.is_trained and len(sample):
        with faiss_team(len(sample)):
            index.train(np.ascontiguousarray(sample, dtype=np.float32))


def index_add(*, index: Any, vectors: np.ndarray) -> None:
    """Append ``vectors`` (their labels continue from ``index.ntotal``), ``ADD_CHUNK`` rows at a time."""
    with faiss_team(len(vectors)):
        for start in range(0, len(vectors), ADD_CHUNK):
            index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32))


def index_create(*, plan: IndexPlan, ids: np.ndarray, vectors: np.ndarray, seed: int = 1234) -> tuple[Any, np.ndarray]:
    """Train (on a random sample) and fill the planned index; returns it and the image id of each label (sorted).

    Vectors are added in ascending id order, one ``ADD_CHUNK`` gathered at a time (no second full copy).
    """
    dimension = vectors.shape[1] if vectors.ndim == 2 else 0
    index = index_new(plan=plan, dimension=dimension)
    order = np.argsort(ids, kind="stable")
    if plan.kind != "flat" and len(ids):
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(ids), size=min(plan.train_size, len(ids)), replace=False))
        index_train(index=index, sample=vectors[sample])
    for start in range(0, len(ids), ADD_CHUNK):
        index_add(index=index, vectors=vectors[order[start : start + ADD_CHUNK]])
    return index, np.ascontiguousarray(ids[order], dtype=np.int64)


def index_params_apply(*, index: Any, params: dict[str, Any]) -> None:
    """Set ``nprobe`` on an index of the earlier layout (``index_query`` passes parameters per call otherwise)."""
    if "nprobe" in params:
        faiss_module().ParameterSpace().set_index_parameter(index, "nprobe", int(params["nprobe"]))


def _search_params(index: Any, *, nprobe: int, k_factor: int, selector: Any) -> Any:
    """faiss search parameters shaped like ``index`` (refine → pre-transform → IVF), keeping their parts alive."""
    faiss = faiss_module()
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        params = faiss.IndexRefineSearchParameters()
        params.k_factor = float(k_factor or 1)
        base = _search_params(index.base_index, nprobe=nprobe, k_factor=0, selector=selector)
        params.base_index_params = base  # a selector at the refine level would be ignored: it goes to the base
        params.referenced = base
        return params
    if isinstance(index, faiss.IndexPreTransform):
        inner = _search_params(index.index, nprobe=nprobe, k_factor=0, selector=selector)
        if inner is None:
            return None
        params = faiss.SearchParametersPreTransform()
        params.index_params = inner
        params.referenced = inner
        return params
    if nprobe and faiss.try_extract_index_ivf(index) is not None:
        params = faiss.SearchParametersIVF(nprobe=nprobe)
    elif selector is None:
        return None
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
        params.referenced_selector = selector
    return params


def _selector(index: Any, params: dict[str, Any], allowed: np.ndarray, labels: np.ndarray | None) -> tuple[Any, int]:
    """An id selector over the faiss labels of ``allowed`` ids, and the ``nprobe`` to search with."""
    faiss = faiss_module()
    if labels is not None:
        allowed = _present(labels, allowed)
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    nprobe = int(params.get("nprobe", 0))
    if nprobe:
        # Only the probed lists are searched, so fewer allowed vectors lie in them: probe more, up to 8x the cost.
        fraction = min(1.0, max(allowed.size, 1) / max(index.ntotal, 1))
        nprobe = min(faiss.extract_index_ivf(index).nlist, nprobe * min(8, math.ceil(1 / fraction)))
    return selector, nprobe


def _present(labels: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The positions in ``labels`` (sorted image ids) of those ``allowed`` ids that are there."""
    positions = np.searchsorted(labels, allowed)
    inside = positions < len(labels)
    positions, wanted = positions[inside], allowed[inside]
    return positions[np.asarray(labels[positions]) == wanted].astype(np.int64)


def index_query(
    *,
    index: Any,
    params: dict[str, Any],
    queries: np.ndarray,
    k: int,
    labels: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    rerank_source: RerankSource | None = None,
) -> Hits:
    """Top ``k`` ``(image id, score)`` per query from a built index (restricted to ``allowed`` ids), best first.

    ``labels`` is the image id of each faiss label (None: labels are image ids, the earlier layout). ``params``
    holds the tuned ``nprobe`` and, for the refine tier, ``k_factor``. An earlier-layout compressed snapshot has
    ``params["rerank"]``: its top ``k·rerank`` candidates are re-scored with the vectors ``rerank_source`` returns.
    """
    rerank = int(params.get("rerank", 0))
    fetch = min(max(index.ntotal, 1), k * rerank if rerank else k)
    selector, nprobe = (None, int(params.get("nprobe", 0)))
    if allowed is not None:
        selector, nprobe = _selector(index, params, allowed, labels)
    search_params = _search_params(index, nprobe=nprobe, k_factor=int(params.get("k_factor", 0)), selector=selector)
    with faiss_team(len(queries)):
        scores, found = index.search(queries, fetch, params=search_params)
    if labels is not None:
        found = np.where(found >= 0, np.asarray(labels)[np.maximum(found, 0)], -1)
    if not rerank or rerank_source is None:
        return [[(int(i), float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0][:k]
                for row_s, row_i in zip(scores, found, strict=True)]  # fmt: skip
    return _rerank(found, queries, k, rerank_source)


def _rerank(found: np.ndarray, queries: np.ndarray, k: int, rerank_source: RerankSource) -> Hits:
    candidates = np.unique(found[found >= 0])
    found_ids, found_vectors = rerank_source(candidates)
    order = np.argsort(found_ids)
    found_ids, found_vectors = found_ids[order], found_vectors[order]
    hits: Hits = []
    for row, row_labels in enumerate(found):
        wanted = row_labels[row_labels >= 0]
        positions = np.searchsorted(found_ids, wanted)
        valid = positions < len(found_ids)
        valid[valid] = found_ids[positions[valid]] == wanted[valid]
        positions = positions[valid]  # candidates whose stored vector vanished (image deleted) drop out
        exact = found_vectors[positions] @ queries[row]
        best = np.argsort(-exact, kind="stable")[:k]
        hits.append([(int(found_ids[positions[j]]), float(exact[j])) for j in best])
    return hits

"""Fusing the semantic and the keyword ranking into one (pure functions, measured by ``bench/hybrid.py``).

* ``rrf``: reciprocal rank fusion, ``Σ 1 / (k + rank)`` over the lists an image is in (Cormack et al., 2009),
  scaled so that first place in both lists scores 1. Equal scores share a rank (the best of the tie), so the
  order of ties (by id) never decides between images.
* ``score``: calibrated score fusion, a weighted mean (keyword ``KEYWORD_SHARE``) of each side's score mapped
  onto [0, 1] for this query: cosine similarity from the fetch depth's cosine (0) to the best one (1), keyword
  relevance (already in [0, 1], discounted for images that match only part of the query's evidence). Images
  that only one side found are scored on the other side too (their cosine from stored vectors; no keyword
  match is 0).

``bench/hybrid.py`` measures both on the same labelled set; ``search.query.types.FUSION_DEFAULT`` ships the better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RRF_K = 60
KEYWORD_SHARE = 0.6  # the keyword side's weight in score fusion (measured by bench/hybrid.py)


def fuse_rrf(
    *, semantic: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]], k: int = RRF_K
) -> dict[int, float]:
    """Image id → fused score in (0, 1] from the two rankings (``(id, score)``, best first)."""
    fused: dict[int, float] = {}
    for ranking in (semantic, keyword):
        rank, previous = 0, None
        for position, (image_id, score) in enumerate(ranking, start=1):
            if score != previous:
                rank, previous = position, score
            fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (k + rank)
    top = 2.0 / (k + 1) if semantic and keyword else 1.0 / (k + 1)
    return {image_id: score / top for image_id, score in fused.items()}


def fuse_scores(
    *, cosines: Mapping[int, float], floor: float, keyword: Mapping[int, float], candidates: Sequence[int]
) -> dict[int, float]:
    """Image id → fused score in [0, 1] for ``candidates``: the weighted mean of the calibrated cosine (``floor`` → 0,
    the best cosine → 1) and the keyword score (0 when absent). With no keyword side, the calibrated cosine alone."""
    best = max(cosines.values(), default=floor)
    span = best - floor if best > floor else 1.0
    share = 1.0 - KEYWORD_SHARE if keyword else 1.0
    fused = {}
    for image_id in candidates:
        cosine = cosines.get(image_id)
        semantic = 0.0 if cosine is None else min(1.0, max(0.0, (cosine - floor) / span))
        fused[image_id] = share * semantic + (1.0 - share) * keyword.get(image_id, 0.0)
    return fused

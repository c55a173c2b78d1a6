"""Keyword and hybrid rankings: the keyword index alone, or fused with the semantic ranking.

Both lists are taken ``FUSION_DEPTH`` deep (or as deep as the page needs), filtered the same way, fused
(``search_fusion``), then cut (``min_score`` / ``relative_margin`` on the fused score) and collapsed like
semantic hits. Every candidate also gets its cosine similarity when a query vector exists (stored vectors,
no model call), so each hit can say how close it looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.db.models import Q, QuerySet

from images.keyword_query import KeywordQuery
from images.keyword_search import keyword_ranking
from images.models import Image
from search.index import index_search, stored_vectors
from search.query import QueryTerm, SearchQuery
from search.state import active_model_key

from .query_vectors import query_model_key, query_vector_build, text_vectors_prefetch
from .search_filters import filters_queryset
from .search_fusion import fuse_rrf, fuse_scores
from .search_ranking import Candidate
from .search_semantic import (
    UNFILTERED_SLACK,
    HitRows,
    candidates_kept,
    hits_ranked,
    rows_load,
    semantic_candidates,
    stage,
)

FUSION_DEPTH = 100  # each side's list is this deep (or as deep as the page needs)
# Pages ranked by score up to this deep load whole rows in the fused order, stopping once the page is full (one
# query, usually); deeper ones, date-sorted and collapsed ones first check every candidate, then load the page.
IN_ORDER_MAX = 100
VECTOR_KINDS = ("text", "image", "url", "image_id", "vector")


@dataclass
class Ranked:
    """A ranked candidate before hydration: its ranking score and what it is made of."""

    image_id: int
    score: float
    duplicate_ids: list[int] = field(default_factory=list)
    semantic: float | None = None
    keyword: float | None = None


class HybridOutcome(NamedTuple):
    """What ``hybrid_candidates`` found: the ranking, each candidate's creation time, the rows already loaded, the
    model key, notices, and whether the keyword side listed every image that matches (so one it did not list
    has nothing to highlight)."""

    ranked: list[Ranked]
    created: dict[int, datetime]
    rows: HitRows
    model_key: str
    notices: list[str]
    keyword_complete: bool


def hybrid_candidates(
    *,
    query: SearchQuery,
    terms: tuple[QueryTerm, ...],
    keywords: KeywordQuery,
    restrict: Q | None,
    want: int,
    timings: dict[str, float],
) -> HybridOutcome:
    """Ranked candidates of a ``keyword`` or ``hybrid`` query (at least ``want`` unless fewer match), their
    creation times, the rows already loaded, the model key and notices."""
    depth = max(FUSION_DEPTH, want)
    excluded = set(query.exclude_ids)
    base = filters_queryset(filters=query.filters, restrict=restrict)
    vector, model_key, notices = None, "", []
    semantic: list[Candidate] = []
    created: dict[int, datetime] = {}
    rows = HitRows(query.rows)
    keyword: list[tuple[int, float]] = []
    complete = False
    in_order = query.sort == "score" and not query.collapse and want <= IN_ORDER_MAX
    # Unfiltered, nearly every id is a ready image: loading the page in order checks the few needed.
    unchecked = in_order and query.filters.is_empty and restrict is None
    if query.mode == "hybrid":
        # The model encodes the text on its thread while this one asks the keyword index.
        encoded = text_vectors_prefetch(terms=terms, model_id=query.model_id)
        keyword, complete = _keyword_side(keywords, base, depth, excluded, timings, checked=not unchecked)
        with stage("encode", timings):
            encoded()
            query_vector = query_vector_build(terms=terms, model_id=query.model_id)
        vector, model_key, notices = query_vector.vector, query_vector.model_key, query_vector.notices
        if unchecked:
            semantic = _semantic_unchecked(vector, model_key, depth, excluded, timings)
        else:
            plain = replace(query, min_score=None, relative_margin=None, collapse=False)
            # Only ids and creation times: the page's rows are loaded once the fused order is known.
            semantic, created, rows = semantic_candidates(plain, vector, model_key, depth, timings, restrict, False)
    else:
        model_key = query_model_key(model_id=query.model_id) if query.model_id else active_model_key()
        keyword, complete = _keyword_side(keywords, base, depth, excluded, timings)
    keyword_scores = dict(keyword)
    cosines = {c.image_id: c.score for c in semantic}
    if vector is not None and len(semantic) < depth:  # the floor is then the lowest cosine of all: every one counts
        _cosines_add(cosines, [i for i in keyword_scores if i not in cosines], vector, model_key)
    if query.mode == "keyword":
        fused = keyword_scores
    elif query.fusion == "rrf":
        fused = fuse_rrf(semantic=[(c.image_id, c.score) for c in semantic], keyword=keyword)
    else:
        floor = semantic[-1].score if len(semantic) >= depth else min(cosines.values(), default=0.0)
        candidates = list(dict.fromkeys([*(c.image_id for c in semantic), *keyword_scores]))
        fused = fuse_scores(cosines=cosines, floor=floor, keyword=keyword_scores, candidates=candidates)
    order = sorted(fused.items(), key=lambda p: (-p[1], p[0]))
    with stage("hydrate", timings):
        passing = _in_order(base, order, want, rows, created) if in_order else _all_checked(base, order, created)
    kept, _ = candidates_kept(query, passing, model_key, {})
    if vector is not None:
        # Below the floor an image's cosine adds nothing to its fused score, but its hit still shows it.
        _cosines_add(cosines, [c.image_id for c in kept if c.image_id not in cosines], vector, model_key)
    ranked = [Ranked(c.image_id, c.score, c.duplicate_ids, cosines.get(c.image_id), keyword_scores.get(c.image_id))
              for c in kept]  # fmt: skip
    return HybridOutcome(ranked, created, rows, model_key, notices, complete)


def _cosines_add(cosines: dict[int, float], image_ids: list[int], vector: np.ndarray, model_key: str) -> None:
    """Into ``cosines``: each of ``image_ids``' cosine with ``vector``, from its stored vector."""
    if image_ids:
        found = stored_vectors(model_key=model_key, image_ids=image_ids)
        cosines.update((i, float(np.dot(v, vector))) for i, v in found.items())


def _semantic_unchecked(
    vector: np.ndarray, model_key: str, depth: int, excluded: set[int], timings: dict[str, float]
) -> list[Candidate]:
    """The index's ``depth`` nearest images to ``vector`` (``excluded`` left out), not yet checked against the
    catalogue."""
    with stage("index", timings):
        raw = index_search(model_key=model_key, vectors=vector[None, :], k=depth + len(excluded))[0]
    return [Candidate(i, s) for i, s in hits_ranked(raw) if i not in excluded][:depth]


def _in_order(
    base: QuerySet[Image], order: list[tuple[int, float]], want: int, rows: HitRows,
    created: dict[int, datetime],
) -> list[Candidate]:  # fmt: skip
    """The first ``want`` of ``order`` that ``base`` holds, loading their whole rows (into ``rows``, ``created``):
    exactly as many as needed, then (if some were not ready) a few more than still needed at a time."""
    passing: list[Candidate] = []
    start = 0
    while len(passing) < want and start < len(order):
        batch = order[start : start + want - len(passing) + (UNFILTERED_SLACK if start else 0)]
        start += len(batch)
        found = rows_load(base, [i for i, _ in batch], rows, created)
        passing += [Candidate(i, s) for i, s in batch if i in found]
    return passing[:want]


def _all_checked(
    base: QuerySet[Image], order: list[tuple[int, float]], created: dict[int, datetime]
) -> list[Candidate]:
    """Every one of ``order`` that ``base`` holds (creation times into ``created``; ids only, no rows)."""
    unloaded = [i for i, _ in order if i not in created]
    for start in range(0, len(unloaded), 900):
        # "width" keeps SQLite off the (status, created_at) covering index, which it would scan whole.
        batch = base.filter(pk__in=unloaded[start : start + 900]).values_list("id", "created_at", "width")
        created.update((i, at) for i, at, _ in batch)
    return [Candidate(i, s) for i, s in order if i in created]


def _keyword_side(
    keywords: KeywordQuery,
    base: QuerySet[Image],
    depth: int,
    excluded: set[int],
    timings: dict[str, float],
    checked: bool = True,
) -> tuple[list[tuple[int, float]], bool]:
    """The keyword ranking ``depth`` deep, and whether it holds every matching image (it ran out before the depth);
    not ``checked`` against ``base`` (the caller loads the page from ``base`` in order)."""
    limit = depth + len(excluded)
    with stage("keyword", timings):
        ranked = keyword_ranking(query=keywords, base=base if checked else None, limit=limit)
    return [(i, s) for i, s in ranked if i not in excluded][:depth], len(ranked) < limit

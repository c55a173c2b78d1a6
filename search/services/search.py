"""``search_run``: a query in, one page of hydrated, scored hits out.

Stages (each timed in ``semsearch_search_stage_seconds``): encode the terms into one vector; search the index
(only the matching ids when filters are selective, else over-fetching and filtering, growing the fetch until the
page is full, a cut-off is reached or the index is exhausted); apply cut-offs and duplicate collapsing; hydrate
the page from the database (ready images only, so deleted or failed ones never show).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import numpy as np
from django.db.models import QuerySet

from core.metrics import SEARCH_STAGE_SECONDS, SEARCHES
from images.models import Image
from search.query import MAX_LIMIT, MAX_WINDOW, QueryError, SearchHit, SearchPage, SearchQuery, terms_validate

from .query_vectors import query_vector_build
from .search_filters import filters_allowed_ids, filters_queryset
from .search_ranking import Candidate, cutoffs_apply, duplicates_collapse

FIRST_FETCH_MIN = 64
UNFILTERED_SLACK = 8
FULL_ROWS_MAX = 500  # up to this many new ids per round, load whole rows at once (saves a second query)
FETCH_GROWTH = 4
MAX_FETCH = 200_000  # deepest index search one query may do while over-fetching for a broad filter


def search_run(*, query: SearchQuery) -> SearchPage:
    """Run ``query`` and return the page ``[offset, offset + limit)`` of its hits, best first (or newest first).

    Every hit carries its score (cosine similarity, higher is closer). Pages are stable: the same query and index
    give the same ordering, ties broken by image id. Raises ``QueryError`` (400) for a bad query or options and
    ``ModelUnavailableError`` (503) when a term needs the model and it cannot load. Read-only apart from metrics
    and the text-vector cache.
    """
    terms_validate(terms=query.terms)
    _options_validate(query)
    SEARCHES.labels(interface=query.interface).inc()
    timings: dict[str, float] = {}
    with _stage("encode", timings):
        query_vector = query_vector_build(terms=query.terms, model_id=query.model_id)
    want = MAX_WINDOW if query.sort == "date" else query.offset + query.limit + 1
    candidates, created, rows = _candidates(query, query_vector.vector, query_vector.model_key, want, timings)
    if query.sort == "date":
        candidates.sort(key=lambda c: (created[c.image_id], c.image_id), reverse=True)
    window = candidates[query.offset : query.offset + query.limit]
    missing = [c.image_id for c in window if c.image_id not in rows]
    if missing:  # only when a deep over-fetch checked ids without loading whole rows
        with _stage("hydrate", timings):
            rows.update(Image.objects.filter(pk__in=missing, status="ready").select_related("uploader").in_bulk())
    hits = [SearchHit(rows[c.image_id], c.score, c.duplicate_ids) for c in window if c.image_id in rows]
    return SearchPage(
        hits=hits,
        offset=query.offset,
        limit=query.limit,
        has_more=len(candidates) > query.offset + query.limit,
        model_key=query_vector.model_key,
        best_score=max((c.score for c in candidates), default=None),
        notices=query_vector.notices,
        terms=query.terms,
        timings_ms=timings,
    )


def _options_validate(query: SearchQuery) -> None:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}.")
    if query.offset < 0:
        raise QueryError("offset must not be negative.")
    if query.offset + query.limit > MAX_WINDOW:
        raise QueryError(f"Results are available up to the {MAX_WINDOW}th hit; narrow the query or add filters.")
    if query.min_score is not None and not -1 <= query.min_score <= 1:
        raise QueryError("min_score must be between -1 and 1 (scores are cosine similarities).")
    if query.relative_margin is not None and not 0 <= query.relative_margin <= 2:
        raise QueryError("The relative cut-off (margin below the best score) must be between 0 and 2.")
    if not 0 < query.collapse_threshold <= 1:
        raise QueryError("The duplicate threshold must be above 0 and at most 1.")
    if query.sort not in ("score", "date"):
        raise QueryError("sort must be 'score' or 'date'.")


def _candidates(
    query: SearchQuery, vector: np.ndarray, model_key: str, want: int, timings: dict[str, float]
) -> tuple[list[Candidate], dict[int, datetime], dict[int, Image]]:
    """Ranked, filtered, cut and collapsed candidates: at least ``want`` of them unless the index has no more.

    Also returns each passing id's creation time and, for ids checked in small batches (the usual case), the
    whole hydrated row, so a page normally costs a single catalogue query.
    """
    from search.index import index_search

    allowed = filters_allowed_ids(filters=query.filters)
    if allowed is not None and not allowed:
        return [], {}, {}
    base = filters_queryset(filters=query.filters)
    excluded = set(query.exclude_ids)
    if query.filters.is_empty:  # nearly every indexed id is a ready image: fetch just the page (plus slack)
        fetch = want + len(excluded) + UNFILTERED_SLACK
    else:
        fetch = max(FIRST_FETCH_MIN, 2 * (want + len(excluded)))
    if allowed is not None:
        fetch = min(fetch, len(allowed))
    created: dict[int, datetime] = {}
    rows: dict[int, Image] = {}
    checked: set[int] = set()
    vectors: dict[int, np.ndarray] = {}
    kept: list[Candidate] = []
    while True:
        with _stage("index", timings):
            raw = index_search(model_key=model_key, vectors=vector[None, :], k=fetch, allowed_ids=allowed)[0]
        exhausted = len(raw) < fetch or fetch >= MAX_FETCH or (allowed is not None and fetch >= len(allowed))
        ranked = sorted(((int(i), float(s)) for i, s in raw if int(i) >= 0), key=lambda p: (-p[1], p[0]))
        new_ids = [i for i, _ in ranked if i not in checked]
        # Unfiltered, nearly every id is a ready image: load the rows the page needs, the slack only if some aren't.
        need = want + len(excluded) if query.filters.is_empty else len(new_ids)
        for batch in (new_ids[:need], new_ids[need:]):
            if not batch:
                continue
            with _stage("hydrate", timings):
                _hydrate(base, batch, rows, created)
            checked.update(batch)
            passing = [Candidate(i, s) for i, s in ranked if i in created and i not in excluded]
            kept, cut = _kept(query, passing, model_key, vectors)
            if len(kept) >= want or cut:
                return kept[: max(want, 0)], created, rows
        if exhausted:
            return kept[: max(want, 0)], created, rows
        fetch = min(fetch * FETCH_GROWTH, MAX_FETCH)


def _hydrate(base: QuerySet[Image], ids: list[int], rows: dict[int, Image], created: dict[int, datetime]) -> None:
    """Load the passing ones of ``ids``: whole rows for a page-sized batch, else only their creation times."""
    if len(ids) <= FULL_ROWS_MAX:
        found = base.filter(pk__in=ids).select_related("uploader").in_bulk()
        rows.update(found)
        created.update((pk, row.created_at) for pk, row in found.items())
    else:
        for chunk in _chunks(ids, 900):
            created.update(base.filter(pk__in=chunk).values_list("id", "created_at"))


def _kept(
    query: SearchQuery, passing: list[Candidate], model_key: str, vectors: dict[int, np.ndarray]
) -> tuple[list[Candidate], bool]:
    """``passing`` after the cut-offs and duplicate collapsing, and whether a cut-off stopped the ranking."""
    from search.index import stored_vectors

    kept, cut = cutoffs_apply(candidates=passing, min_score=query.min_score, relative_margin=query.relative_margin)
    if query.collapse:
        missing = [c.image_id for c in kept if c.image_id not in vectors]
        if missing:
            vectors.update(stored_vectors(model_key=model_key, image_ids=missing))
        kept = duplicates_collapse(candidates=kept, vectors=vectors, threshold=query.collapse_threshold)
    return kept, cut


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        SEARCH_STAGE_SECONDS.labels(stage=name).observe(elapsed)
        timings[name] = round(timings.get(name, 0.0) + elapsed * 1000, 3)

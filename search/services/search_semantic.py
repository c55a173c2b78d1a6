"""The semantic ranking: index search over the filtered catalogue, growing the fetch until enough hits pass.

Searches only the matching ids when filters are selective, else over-fetches and filters, growing the fetch until
the page is full, a cut-off is reached or the index is exhausted; applies cut-offs and duplicate collapsing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Q, QuerySet

from core.metrics import SEARCH_STAGE_SECONDS
from images.models import Image
from search.query import RowKind, SearchQuery

from .hit_values import hit_values
from .search_filters import filters_allowed_ids, filters_queryset
from .search_ranking import Candidate, cutoffs_apply, duplicates_collapse

FIRST_FETCH_MIN = 64
UNFILTERED_SLACK = 8
FULL_ROWS_MAX = 500  # up to this many new ids per round, load whole rows at once (saves a second query)
FETCH_GROWTH = 4
MAX_FETCH = 200_000  # deepest index search one query may do while over-fetching for a broad filter
# The columns a page of hits shows (the API's hit shape, the results page); others load on access.
HIT_FIELDS = ("id", "title", "original_filename", "width", "height", "format", "tags", "attribution", "source_link",
              "source_url", "created_at", "thumbnail", "original", "uploader__username")  # fmt: skip
Row = Image | dict[str, Any]  # a hydrated hit: the model instance, or its HIT_FIELDS values (``RowKind``)


class HitRows(dict[int, Row]):
    """Hydrated hits by image id, loaded as ``kind`` says (``rows_load``)."""

    def __init__(self, kind: RowKind) -> None:
        super().__init__()
        self.kind = kind


def semantic_candidates(
    query: SearchQuery,
    vector: np.ndarray,
    model_key: str,
    want: int,
    timings: dict[str, float],
    restrict: Q | None = None,
    rows_wanted: bool = True,
) -> tuple[list[Candidate], dict[int, datetime], HitRows]:
    """Ranked, filtered, cut and collapsed candidates: at least ``want`` of them unless the index has no more.

    Also returns each passing id's creation time and, for ids checked in small batches (the usual case), the
    whole hydrated row (as ``query.rows`` asks), so a page normally costs a single catalogue query.
    """
    from search.index import index_search

    allowed = filters_allowed_ids(filters=query.filters, restrict=restrict)
    if allowed is not None and not allowed:
        return [], {}, HitRows(query.rows)
    base = filters_queryset(filters=query.filters, restrict=restrict)
    unfiltered = query.filters.is_empty and restrict is None
    excluded = set(query.exclude_ids)
    # Unfiltered, nearly every indexed id is a ready image: fetch just the page (plus slack).
    fetch = want + len(excluded) + UNFILTERED_SLACK if unfiltered else max(FIRST_FETCH_MIN, 2 * (want + len(excluded)))
    if allowed is not None:
        fetch = min(fetch, len(allowed))
    created: dict[int, datetime] = {}
    rows = HitRows(query.rows)
    checked: set[int] = set()
    vectors: dict[int, np.ndarray] = {}
    kept: list[Candidate] = []
    while True:
        with stage("index", timings):
            raw = index_search(model_key=model_key, vectors=vector[None, :], k=fetch, allowed_ids=allowed)[0]
        exhausted = len(raw) < fetch or fetch >= MAX_FETCH or (allowed is not None and fetch >= len(allowed))
        ranked = hits_ranked(raw)
        new_ids = [i for i, _ in ranked if i not in checked]
        # Unfiltered, nearly every id is a ready image: load the rows the page needs, the slack only if some aren't.
        need = want + len(excluded) if unfiltered else len(new_ids)
        for batch in (new_ids[:need], new_ids[need:]):
            if not batch:
                continue
            with stage("hydrate", timings):
                _hydrate(base, batch, rows if rows_wanted else None, created)
            checked.update(batch)
            passing = [Candidate(i, s) for i, s in ranked if i in created and i not in excluded]
            kept, cut = candidates_kept(query, passing, model_key, vectors)
            if len(kept) >= want or cut:
                return kept[: max(want, 0)], created, rows
        if exhausted:
            return kept[: max(want, 0)], created, rows
        fetch = min(fetch * FETCH_GROWTH, MAX_FETCH)


def _hydrate(base: QuerySet[Image], ids: list[int], rows: HitRows | None, created: dict[int, datetime]) -> None:
    """Load the passing ones of ``ids``: whole rows for a page-sized batch (unless ``rows`` is ``None``), else only
    their creation times."""
    if rows is not None and len(ids) <= FULL_ROWS_MAX:
        rows_load(base, ids, rows, created)
    else:
        for chunk in _chunks(ids, 900):
            # "width" keeps SQLite off the (status, created_at) covering index, which it would scan whole.
            created.update((i, at) for i, at, _ in base.filter(pk__in=chunk).values_list("id", "created_at", "width"))


def hits_ranked(raw: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Index hits as ``(image id, score)``, best first with ties by id (stable pages); padding (id -1) dropped."""
    return sorted(((int(i), float(s)) for i, s in raw if int(i) >= 0), key=lambda p: (-p[1], p[0]))


def rows_load(base: QuerySet[Image], ids: list[int], rows: HitRows, created: dict[int, datetime]) -> set[int]:
    """The rows of ``base`` among ``ids`` with the columns a page of hits shows (``HIT_FIELDS``), as ``rows.kind``
    says, into ``rows`` and their creation times into ``created``; returns the ids found."""
    found: dict[int, Row]
    if rows.kind == "values":
        # Plain dicts: no model instances (building them was two thirds of a page's hydration).
        values = hit_values(base, ids, HIT_FIELDS)
        created.update((row["id"], row["created_at"]) for row in values)
        found = {row["id"]: row for row in values}
    else:
        instances = base.filter(pk__in=ids).select_related("uploader").only(*HIT_FIELDS).in_bulk()
        created.update((pk, row.created_at) for pk, row in instances.items())
        found = dict(instances)
    rows.update(found)
    return set(found)


def candidates_kept(
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
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        SEARCH_STAGE_SECONDS.labels(stage=name).observe(elapsed)
        timings[name] = round(timings.get(name, 0.0) + elapsed * 1000, 3)

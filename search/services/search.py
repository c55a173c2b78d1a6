"""``search_run``: a query in, one page of hydrated, scored hits out, in the query's mode.

* ``semantic``: the terms' vector against the index (``search_semantic``).
* ``keyword``: the keyword index alone (``images.keyword_search``); no model needed.
* ``hybrid`` (the default): both rankings fused (``search_hybrid``); a query without words is plain semantic.

Field terms (``by:"Michelle Spencer"``) restrict every mode. Stages are timed in ``semsearch_search_stage_seconds``;
hydration reads ready images only, so deleted or failed ones never show.
"""

from __future__ import annotations

from dataclasses import replace

from core.metrics import SEARCHES
from images.keyword_search import keyword_highlights, keyword_restriction
from images.models import Image
from search.query import MAX_LIMIT, MAX_WINDOW, QueryError, SearchHit, SearchPage, SearchQuery, terms_validate
from search.query.keywords import keyword_query_from_terms
from search.query.types import MODES

from .query_vectors import query_vector_build
from .search_hybrid import VECTOR_KINDS, Ranked, hybrid_candidates
from .search_semantic import rows_load, semantic_candidates, stage


def search_run(*, query: SearchQuery) -> SearchPage:
    """Run ``query`` and return the page ``[offset, offset + limit)`` of its hits, best first (or newest first).

    Every hit carries its ranking score (cosine similarity in semantic mode), its cosine and keyword scores and
    its matched fields. Pages are stable: the same query and index give the same ordering, ties broken by image
    id. Raises ``QueryError`` (400) for a bad query or options and ``ModelUnavailableError`` (503) when a term
    needs the model and it cannot load. Read-only apart from metrics and the text-vector cache.
    """
    terms_validate(terms=query.terms)
    _options_validate(query)
    keywords = keyword_query_from_terms(terms=query.terms)
    vector_terms = tuple(t for t in query.terms if t.kind in VECTOR_KINDS)
    mode = query.mode
    if mode == "keyword" and vector_terms and not all(t.kind == "text" for t in vector_terms):
        raise QueryError("Keyword mode searches words only; image:, URL and picture terms need mode=hybrid or "
                         "mode=semantic.")  # fmt: skip
    if mode == "keyword" and keywords.is_empty:
        raise QueryError("Keyword mode needs at least one word to look for.")
    if mode == "semantic" and not any(t.weight > 0 for t in vector_terms):
        raise QueryError("Semantic mode needs a text or picture term; field terms such as by: only narrow it "
                         "(use mode=hybrid or mode=keyword to search by fields alone).")  # fmt: skip
    if mode == "hybrid" and not any(t.weight > 0 for t in vector_terms):
        mode = "keyword"  # only field terms: nothing for the model to rank
    if mode == "hybrid" and keywords.is_empty:
        mode = "semantic"
    SEARCHES.labels(interface=query.interface).inc()
    timings: dict[str, float] = {}
    restrict = keyword_restriction(query=keywords)
    want = MAX_WINDOW if query.sort == "date" else query.offset + query.limit + 1
    notices: list[str] = []
    keyword_complete = False
    if mode == "semantic":
        with stage("encode", timings):
            query_vector = query_vector_build(terms=vector_terms, model_id=query.model_id)
        notices = query_vector.notices
        found, created, rows = semantic_candidates(query, query_vector.vector, query_vector.model_key, want, timings,
                                                   restrict)  # fmt: skip
        model_key = query_vector.model_key
        ranked = [Ranked(c.image_id, c.score, c.duplicate_ids, c.score, None) for c in found]
    else:
        outcome = hybrid_candidates(query=replace(query, mode=mode), terms=vector_terms, keywords=keywords,
                                    restrict=restrict, want=want, timings=timings)  # fmt: skip
        ranked, created, rows, model_key, notices, keyword_complete = outcome
    if query.sort == "date":
        ranked.sort(key=lambda c: (created[c.image_id], c.image_id), reverse=True)
    window = ranked[query.offset : query.offset + query.limit]
    missing = [c.image_id for c in window if c.image_id not in rows]
    if missing:  # only when a deep over-fetch checked ids without loading whole rows
        with stage("hydrate", timings):
            # No ordering: with the model's (-created_at) SQLite would walk the whole status/created index.
            rows_load(Image.objects.filter(status="ready").order_by(), missing, rows, created)
    window = [c for c in window if c.image_id in rows]
    matches = {}
    # When the keyword side listed every match, a hit it did not rank matches no word: nothing to highlight.
    marked = [c.image_id for c in window if c.keyword is not None or not keyword_complete]
    if not keywords.is_empty and marked:
        with stage("highlight", timings):
            matches = keyword_highlights(query=keywords, image_ids=marked)
    hits = [SearchHit(rows[c.image_id], c.score, c.duplicate_ids, c.semantic, c.keyword, matches.get(c.image_id, []))
            for c in window]  # fmt: skip
    return SearchPage(
        hits=hits,
        offset=query.offset,
        limit=query.limit,
        has_more=len(ranked) > query.offset + query.limit,
        model_key=model_key,
        best_score=max((c.score for c in ranked), default=None),
        notices=notices,
        terms=query.terms,
        timings_ms=timings,
        mode=mode,
    )


def _options_validate(query: SearchQuery) -> None:
    if query.mode not in MODES:
        raise QueryError(f"mode must be one of {', '.join(MODES)}.")
    if query.fusion not in ("rrf", "score"):
        raise QueryError("fusion must be 'rrf' or 'score'.")
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

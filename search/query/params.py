"""Turning validated request parameters (from the REST serializers or the web form) into a ``SearchQuery``."""

from __future__ import annotations

from typing import Any

from images.filters import catalogue_filters_from

from .types import DEFAULT_COLLAPSE_THRESHOLD, DEFAULT_LIMIT, QueryTerm, RowKind, SearchFilters, SearchQuery


def filters_from_params(params: dict[str, Any]) -> SearchFilters:
    """``SearchFilters`` from the filter parameters (``images.filters.catalogue_filters_from``). Pure."""
    return catalogue_filters_from(params=params)


def search_query_from_params(
    *,
    params: dict[str, Any],
    terms: tuple[QueryTerm, ...],
    interface: str,
    exclude_ids: tuple[int, ...] = (),
    rows: RowKind = "models",
) -> SearchQuery:
    """A ``SearchQuery`` for ``terms`` with the filters and options in ``params`` (already type-checked), its hits
    hydrated as ``rows``. Pure."""
    threshold = params.get("collapse_threshold")
    return SearchQuery(
        terms=terms,
        filters=filters_from_params(params),
        min_score=params.get("min_score"),
        relative_margin=params.get("relative_margin"),
        sort=params.get("sort") or "score",
        collapse=bool(params.get("collapse")),
        collapse_threshold=DEFAULT_COLLAPSE_THRESHOLD if threshold is None else threshold,
        offset=params.get("offset") or 0,
        limit=params.get("limit") or DEFAULT_LIMIT,
        exclude_ids=exclude_ids,
        interface=interface,
        mode=params.get("mode") or "hybrid",
        rows=rows,
    )

"""Turning validated request parameters (from the REST serializers or the web form) into a ``SearchQuery``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.utils import timezone

from .types import DEFAULT_COLLAPSE_THRESHOLD, DEFAULT_LIMIT, QueryTerm, SearchFilters, SearchQuery


def _split(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(dict.fromkeys(i.strip() for i in items if i and i.strip()))


def _moment(value: date | datetime | None, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.max if end_of_day else time.min)
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def filters_from_params(params: dict[str, Any]) -> SearchFilters:
    """``SearchFilters`` from ``tags``, ``text`` (read from the picture), ``uploader``, ``format``, ``min_width``,
    ``min_height``, ``created_after`` and ``created_before`` (dates are whole days: ``created_before`` includes its
    day). Pure."""
    return SearchFilters(
        created_after=_moment(params.get("created_after"), end_of_day=False),
        created_before=_moment(params.get("created_before"), end_of_day=True),
        tags=_split(params.get("tags")),
        uploader=(params.get("uploader") or "").strip(),
        formats=tuple(f.upper() for f in _split(params.get("format"))),
        min_width=params.get("min_width") or None,
        min_height=params.get("min_height") or None,
        text=" ".join((params.get("text") or "").split()),
    )


def search_query_from_params(
    *,
    params: dict[str, Any],
    terms: tuple[QueryTerm, ...],
    interface: str,
    exclude_ids: tuple[int, ...] = (),
) -> SearchQuery:
    """A ``SearchQuery`` for ``terms`` with the filters and options in ``params`` (already type-checked). Pure."""
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
    )

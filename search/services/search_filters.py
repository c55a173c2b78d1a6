"""Catalogue filters for search: which ready images may be hits, and whether a filter is selective.

A selective filter (few matching images) is searched exactly over just those ids; a broad one is applied after
the index search, over-fetching until the page is full (see ``search.services.search``).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from images.enrichment_filters import autotag_match_q, picture_text_filter
from images.models import Image, ImageStatus
from search.query import SearchFilters

# Up to this many matching images, search only them (exactly, by id); above it, over-fetch and filter.
SELECTIVE_MAX_IDS = 20_000


def filters_queryset(*, filters: SearchFilters) -> QuerySet[Image]:
    """Ready images that pass ``filters`` (deleted images are simply absent). Lazy; no query runs here."""
    queryset = Image.objects.filter(status=ImageStatus.READY)
    if filters.created_after:
        queryset = queryset.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        queryset = queryset.filter(created_at__lte=filters.created_before)
    if filters.uploader:
        queryset = queryset.filter(uploader__username=filters.uploader)
    if filters.formats:  # stored as Pillow names them ("JPEG", "WebP"): compare without case
        any_format = Q()
        for name in filters.formats:
            any_format |= Q(format__iexact=name)
        queryset = queryset.filter(any_format)
    if filters.min_width:
        queryset = queryset.filter(width__gte=filters.min_width)
    if filters.min_height:
        queryset = queryset.filter(height__gte=filters.min_height)
    for tag in filters.tags:
        queryset = _with_tag(queryset, tag)
    if filters.text:
        queryset = picture_text_filter(queryset=queryset, text=filters.text)
    return queryset.order_by()


def _with_tag(queryset: QuerySet[Image], tag: str) -> QuerySet[Image]:
    if connection.vendor == "postgresql":
        return queryset.filter(Q(tags__contains=[tag]) | autotag_match_q(tag=tag))
    # SQLite has no JSON containment lookup; json_each walks the list instead.
    table = Image._meta.db_table
    sql = f'SELECT "{table}"."id" FROM "{table}", json_each("{table}"."tags") WHERE json_each.value = %s'
    return queryset.filter(Q(id__in=RawSQL(sql, [tag])) | autotag_match_q(tag=tag))


def filters_allowed_ids(*, filters: SearchFilters) -> list[int] | None:
    """The matching ids when the filters are selective (at most ``SELECTIVE_MAX_IDS``), else ``None`` (broad).

    No filters at all is always broad. One bounded query.
    """
    if filters.is_empty:
        return None
    ids = list(filters_queryset(filters=filters).values_list("id", flat=True)[: SELECTIVE_MAX_IDS + 1])
    return None if len(ids) > SELECTIVE_MAX_IDS else ids

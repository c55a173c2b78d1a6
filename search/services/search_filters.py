"""Catalogue filters for search: which ready images may be hits, and whether a filter is selective.

A selective filter (few matching images) is searched exactly over just those ids; a broad one is applied after
the index search, over-fetching until the page is full (see ``search.services.search``).
"""

from __future__ import annotations

from functools import cache

from django.db.models import Q, QuerySet

from images.filters import image_filter
from images.models import Image, ImageStatus
from search.query import SearchFilters

# Up to this many matching images, search only them (exactly, by id); above it, over-fetch and filter.
SELECTIVE_MAX_IDS = 20_000


def filters_queryset(*, filters: SearchFilters, restrict: Q | None = None) -> QuerySet[Image]:
    """Ready images that pass ``filters`` (``images.filters.image_filter``; deleted images are simply absent) and
    ``restrict`` (the keyword side's field terms). Lazy; no query runs here."""
    queryset = image_filter(queryset=ready_images().all(), filters=filters)
    return queryset if restrict is None else queryset.filter(restrict)


@cache
def ready_images() -> QuerySet[Image]:
    """Ready images, unordered: built once (a filter costs more than a copy). Copy it (``.all()``) before use: it
    is never evaluated itself."""
    return Image.objects.filter(status=ImageStatus.READY).order_by()


def filters_allowed_ids(*, filters: SearchFilters, restrict: Q | None = None) -> list[int] | None:
    """The matching ids when the filters are selective (at most ``SELECTIVE_MAX_IDS``), else ``None`` (broad).

    No filters at all is always broad. One bounded query.
    """
    if filters.is_empty and restrict is None:
        return None
    queryset = filters_queryset(filters=filters, restrict=restrict)
    ids = list(queryset.values_list("id", flat=True)[: SELECTIVE_MAX_IDS + 1])
    return None if len(ids) > SELECTIVE_MAX_IDS else ids

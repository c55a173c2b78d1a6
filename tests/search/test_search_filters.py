"""Catalogue filters: which ready images may be hits, and when a filter counts as selective."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from images.models import ImageStatus
from search.query import SearchFilters
from search.services import search_filters
from search.services.search_filters import filters_allowed_ids, filters_queryset
from tests.search.test_search_fixtures import days_ago, image_make

pytestmark = pytest.mark.django_db


def _ids(filters: SearchFilters) -> set[int]:
    return set(filters_queryset(filters=filters).values_list("id", flat=True))


def test_each_filter_selects_exactly_the_matching_ready_images() -> None:
    # given a small catalogue with different owners, tags, formats, sizes and ages
    alice = get_user_model().objects.create_user("alice")
    old = image_make(title="old", created_at=days_ago(30), tags=["sea", "summer"], format="JPEG")
    big = image_make(title="big", width=4000, height=3000, uploader=alice, tags=["sea"])
    small = image_make(title="small", width=100, height=80, tags=["city"], format="WebP")
    pending = image_make(title="pending", status=ImageStatus.PENDING, tags=["sea"])

    # then every filter narrows to what it says, and pending images never pass
    assert _ids(SearchFilters()) == {old.pk, big.pk, small.pk}
    assert _ids(SearchFilters(tags=("sea",))) == {old.pk, big.pk}
    assert _ids(SearchFilters(tags=("sea", "summer"))) == {old.pk}
    assert _ids(SearchFilters(uploader="alice")) == {big.pk}
    assert _ids(SearchFilters(formats=("jpeg", "webp"))) == {old.pk, small.pk}
    assert _ids(SearchFilters(min_width=1000)) == {big.pk}
    assert _ids(SearchFilters(min_height=100)) == {old.pk, big.pk}
    assert _ids(SearchFilters(created_before=days_ago(7))) == {old.pk}
    assert _ids(SearchFilters(created_after=days_ago(7))) == {big.pk, small.pk}
    assert pending.pk not in _ids(SearchFilters(tags=("sea",)))


def test_selective_filters_return_ids_and_broad_ones_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # given three matching images and a selectivity limit of two
    for _ in range(3):
        image_make(tags=["sea"])
    image_make(tags=["city"])
    monkeypatch.setattr(search_filters, "SELECTIVE_MAX_IDS", 2)
    # then "city" (1 match) is selective, "sea" (3) is broad, and no filter is always broad
    assert len(filters_allowed_ids(filters=SearchFilters(tags=("city",))) or []) == 1
    assert filters_allowed_ids(filters=SearchFilters(tags=("sea",))) is None
    assert filters_allowed_ids(filters=SearchFilters()) is None
    assert filters_allowed_ids(filters=SearchFilters(tags=("none",))) == []

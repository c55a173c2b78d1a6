"""hit_values: a page of hits as plain values, the unfiltered page's SQL compiled once per page size."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images.models import ImageStatus
from search.query import SearchFilters
from search.services import hit_values as module
from search.services.hit_values import hit_values
from search.services.search_filters import filters_queryset
from search.services.search_semantic import HIT_FIELDS
from tests.search.test_search_fixtures import image_make

pytestmark = pytest.mark.django_db


def _orm(base, ids: list[int]) -> list[dict]:
    return sorted(base.filter(pk__in=ids).values(*HIT_FIELDS), key=lambda row: row["id"])


def test_unfiltered_pages_match_the_orm_and_reuse_one_statement_per_size() -> None:
    # given ready images (one with an uploader and tags), a pending one, and a base with no filters
    user = get_user_model().objects.create_user("ansel", password="pw")
    ready = [image_make(tags=["b", "a"], uploader=user), *(image_make() for _ in range(5))]
    pending = image_make(status=ImageStatus.PENDING)
    base = filters_queryset(filters=SearchFilters())
    module._local.__dict__.clear()
    # when two pages of four ids each (a repeat, an unknown id, the pending image) are loaded
    first = [ready[0].pk, ready[1].pk, ready[0].pk, 10**9, pending.pk]
    second = [ready[2].pk, ready[3].pk, ready[4].pk, ready[5].pk]
    with CaptureQueriesContext(connection) as queries:
        rows = [hit_values(base, first, HIT_FIELDS), hit_values(base, second, HIT_FIELDS)]
    # then each is exactly what the ORM gives, in one query, the statement compiled once for the size four
    assert sorted(rows[0], key=lambda row: row["id"]) == _orm(base, first)
    assert sorted(rows[1], key=lambda row: row["id"]) == _orm(base, second)
    assert rows[0][0]["uploader__username"] == "ansel"
    assert rows[0][0]["tags"] == ["b", "a"]
    assert rows[0][0]["created_at"].tzinfo is not None
    assert len(queries) == 2
    assert len(module._local.statements) == 1


def test_a_filtered_page_keeps_its_filter() -> None:
    # given a wide and a narrow ready image, and the statement for two ids already compiled unfiltered
    wide, narrow = image_make(width=2000), image_make(width=100)
    hit_values(filters_queryset(filters=SearchFilters()), [wide.pk, narrow.pk], HIT_FIELDS)
    # when the same ids are loaded through a min_width filter
    rows = hit_values(filters_queryset(filters=SearchFilters(min_width=1000)), [wide.pk, narrow.pk], HIT_FIELDS)
    # then only the wide one comes back
    assert [row["id"] for row in rows] == [wide.pk]

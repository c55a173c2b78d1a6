"""The Redis cache fails open: with nothing listening, reads miss and writes are skipped, and a throttled API
request is served (the process-level version of ``test_redis_restart.py``; runs in both passes, no Redis needed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches

from semsearch_site.cache import FailOpenRedisCache

from .services import free_port

pytestmark = pytest.mark.faults


@pytest.fixture
def dead_redis_cache(settings: Any) -> FailOpenRedisCache:
    """The project's cache backend pointed at a loopback port nothing listens on."""
    settings.CACHES = {
        "default": {
            "BACKEND": "semsearch_site.cache.FailOpenRedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    cache = caches["default"]
    assert isinstance(cache, FailOpenRedisCache)
    return cache


def test_reads_miss_and_writes_are_skipped_while_redis_is_down(dead_redis_cache: FailOpenRedisCache) -> None:
    # Given a cache whose Redis does not answer
    cache = dead_redis_cache
    # When it is used, then nothing raises: reads miss, writes report that they did not happen
    cache.set("k", 1)
    assert cache.get("k", "missing") == "missing"
    assert cache.get_many(["k", "j"]) == {}
    assert cache.add("k", 1) is False
    assert cache.set_many({"a": 1}) == ["a"]
    assert cache.has_key("k") is False
    assert cache.touch("k") is False
    assert cache.delete("k") is False
    cache.delete_many(["k"])
    assert cache.get_or_set("k", 5) == 5


@pytest.mark.django_db
def test_throttled_api_answers_while_the_cache_is_down(dead_redis_cache: FailOpenRedisCache) -> None:
    # Given the cache (which DRF's throttling reads on every API request) is down
    from rest_framework.test import APIClient

    # When throttled endpoints are called
    statuses = {path: APIClient().get(path).status_code for path in ("/api/v1/status", "/api/v1/images/")}
    # Then they answer normally
    assert statuses == {"/api/v1/status": 200, "/api/v1/images/": 200}

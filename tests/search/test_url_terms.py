"""URL terms in searches cannot be abused: anonymous callers need an account unless a setting allows them, fetches
have their own throttle, and slow URLs hold at most ``SEMSEARCH_FETCH_CONCURRENCY`` web threads, each for at most
``SEMSEARCH_QUERY_FETCH_TIMEOUT``, while ordinary searches keep answering."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.images.servers import local_server, slow_body
from tests.reliability.test_authorization import new_image

FAST_RATES = dict.fromkeys(("search", "read", "upload", "fetch"), "100000/min")


@pytest.fixture
def token(db: None) -> str:
    user = get_user_model().objects.create_user("url-searcher")
    return Token.objects.create(user=user).key


@pytest.fixture(autouse=True)
def _rates(monkeypatch: pytest.MonkeyPatch, settings) -> None:
    settings.SEMSEARCH_MODEL_ID = "toy"
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", dict(FAST_RATES))
    cache.clear()


def _get(base: str, params: dict, token: str) -> tuple[int, dict, float]:
    request = urllib.request.Request(f"{base}/api/v1/search?{urllib.parse.urlencode(params)}",
                                     headers={"Authorization": f"Token {token}"})  # fmt: skip
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_twenty_slow_urls_in_flight_leave_ordinary_searches_fast(live_server, settings, token: str) -> None:
    # Given a loopback server that drips its "pictures" for 30 s, allowed for this test, and a 2 s search deadline
    image = new_image(embedded=True)
    settings.SEMSEARCH_QUERY_FETCH_TIMEOUT = 2.0
    settings.SEMSEARCH_FETCH_CONCURRENCY = 4
    base = live_server.url
    ordinary = {"q": f"image:{image.pk}"}
    baseline = max(_get(base, ordinary, token)[2] for _ in range(5))
    with local_server({f"/slow{n}.png": slow_body(30) for n in range(20)}) as server:
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{server.port}"]
        with ThreadPoolExecutor(max_workers=24) as pool:
            # When 20 searches with slow URL terms are sent at once
            slow = [pool.submit(_get, base, {"q": server.url(f"/slow{n}.png")}, token) for n in range(20)]
            time.sleep(0.3)
            # Then ordinary searches sent meanwhile answer within their normal latency
            during = [pool.submit(_get, base, ordinary, token) for _ in range(8)]
            fast = [future.result() for future in during]
            outcomes = [future.result() for future in slow]
    assert all(status == 200 for status, _, _ in fast), fast
    assert max(seconds for _, _, seconds in fast) < max(1.0, 5 * baseline), (baseline, fast)
    # And every slow one ends with a clear error: 504 past the deadline, or 503 at once when all slots are taken
    statuses = sorted(status for status, _, _ in outcomes)
    assert set(statuses) <= {503, 504}, outcomes
    assert statuses.count(504) <= 4, statuses
    assert all(body["code"] in ("fetch_busy", "fetch_timeout") and body["detail"] for _, body, _ in outcomes)
    assert max(seconds for _, _, seconds in outcomes) < 2.0 + 3.0, outcomes
    # And the slow server never saw more downloads than there are fetch slots
    assert len(server.requests) <= 4, server.requests


@pytest.mark.django_db
def test_url_terms_need_an_account_unless_allowed_and_are_throttled(settings, token: str, monkeypatch) -> None:
    url = "http://127.0.0.1:9/nothing-listens-here.png"
    settings.SEMSEARCH_FETCH_ALLOWLIST = ["127.0.0.1:9"]
    # Given the default (anonymous URL terms off): an anonymous URL search is a 401 that says why
    refused = APIClient().get("/api/v1/search", {"q": url})
    assert refused.status_code == 401
    assert refused.json()["code"] == "url_terms_need_account"
    # And a plain text search stays open to anonymous callers
    assert APIClient().get("/api/v1/search", {"q": "image:1"}).status_code != 401
    # When the setting allows anonymous URL terms, the fetch is attempted (and fails cleanly: nothing listens)
    settings.SEMSEARCH_URL_TERMS_ANONYMOUS = True
    attempted = APIClient().get("/api/v1/search", {"q": url})
    assert attempted.status_code == 400, attempted.content
    assert "could not be used" in attempted.json()["detail"]
    # And URL fetches have their own throttle: 2 a minute, then 429 with Retry-After
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**FAST_RATES, "fetch": "2/min"})
    cache.clear()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    codes = [client.get("/api/v1/search", {"q": url}).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    throttled = client.get("/api/v1/search", {"q": url})
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) >= 1
    # While ordinary searches are not held back by the fetch throttle
    assert client.get("/api/v1/search", {"q": "image:1"}).status_code != 429

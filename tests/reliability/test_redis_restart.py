"""Redis (broker and cache) restarts while uploads and searches run: no upload is lost, searches keep answering.

The private Redis has no persistence, so a restart drops every queued message: the images whose embedding task was
waiting are recovered by the periodic reconcile (beat, every 10 s here; ``pending`` older than a minute is
re-queued). Services pass only.
"""

from __future__ import annotations

import itertools
import threading
import time
from urllib.parse import quote_plus

import pytest

from .conftest import FaultReport, Http, Stack, Traffic, hit_ids, uploaded_ids, wait_until
from .services import png_pictures

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

_seeded: list[int] = []


def seed_images(stack: Stack, http: Http, count: int = 8) -> list[int]:
    """Upload ``count`` pictures once per stack and wait until all are ready (idempotent)."""
    if not _seeded:
        for content, caption in png_pictures(count, seed=1000):
            reply = http.upload(content, "seed.png", title=caption)
            assert reply.status in (200, 201), reply.text
            _seeded.extend(uploaded_ids(reply))
        wait_until(lambda: stack.all_ready(_seeded), 120, message="seed images never became ready")
    # Every seed findable, and a text search answers: the web process has loaded the index and the model before
    # any test starts timing.
    wait_until(lambda: all(findable(http, pk) for pk in _seeded), 120, message="seed images never became findable")
    wait_until(lambda: http.get("/api/v1/search?q=a+red+circle").status == 200, 120, message="text search fails")
    return list(_seeded)


def findable(http: Http, image_id: int) -> bool:
    """A search by the image's own stored vector returns it among the first ten hits."""
    reply = http.get(f"/api/v1/search?q=image:{image_id}&limit=10")
    return reply.status == 200 and image_id in hit_ids(reply)


def test_redis_restart_loses_no_upload_and_search_keeps_answering(
    stack: Stack, stack_http: Http, fault_report: FaultReport
) -> None:
    # Given a serving stack, one client uploading new pictures and two searching
    seed_images(stack, stack_http)
    pictures = iter(png_pictures(10_000, seed=2000))
    pictures_lock = threading.Lock()
    accepted: list[int] = []
    queries = itertools.cycle(["a red circle", "two blue squares", "a star on a black background"])

    def upload(n: int) -> object:
        with pictures_lock:
            content, caption = next(pictures)
        reply = stack_http.upload(content, f"redis-{n}.png", title=caption)
        if reply.status in (200, 201):
            accepted.extend(uploaded_ids(reply))
        return reply

    operations = {
        "upload": upload,
        "search": lambda n: stack_http.get(f"/api/v1/search?q={quote_plus(next(queries))}&limit=5"),
    }
    with Traffic(operations, threads_per_op=1, pause=0.1) as traffic:
        time.sleep(3)
        # When Redis restarts (every queued message and cached entry gone) while they run
        down_at = time.monotonic()
        stack.redis.restart(down_seconds=3)
        up_at = time.monotonic()
        time.sleep(5)

    # Then every upload and search got an answer, and none was a server error
    errors = [s for s in traffic.samples if s.status == 0 or s.status >= 500]
    assert not errors, f"{len(errors)} failed requests, e.g. {errors[:2]}; web log:\n{stack.web_errors()}"
    uploads = [s for s in traffic.samples if s.op == "upload"]
    during = traffic.between(down_at, up_at)
    assert during, "no request ran during the outage: the test did not exercise it"
    assert all(s.status in (200, 201) for s in uploads), [s.detail for s in uploads if s.status not in (200, 201)]
    # And every accepted upload ends ready with one embedding and findable, without anyone re-queueing by hand
    assert len(accepted) == len(uploads)
    started = time.monotonic()
    wait_until(lambda: stack.all_ready(accepted), 150, interval=1, message="uploads stuck after the Redis restart")
    settled = time.monotonic() - started
    not_found = [pk for pk in accepted if not findable(stack_http, pk)]
    assert not not_found, f"ready but not findable: {not_found}"
    fault_report.record(
        "redis_restart",
        uploads=len(uploads),
        searches=len(traffic.samples) - len(uploads),
        requests_during_outage=len(during),
        server_errors=0,
        lost_uploads=0,
        seconds_until_all_ready=round(settled, 1),
    )

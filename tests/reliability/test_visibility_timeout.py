"""A task that runs longer than the broker's visibility timeout is redelivered by Redis while it still runs; the
single-flight build lock must keep the copy from building beside the original.

Two real workers run ``tests.reliability.slow_worker`` (the project's app with a 3 s visibility timeout and every
snapshot build slowed to 12 s) on a Redis of their own; ``workers.tasks.index_build`` is sent once. Services pass.
"""

from __future__ import annotations

import itertools
import re
import time

import pytest

from .conftest import FaultReport, Http, Stack, wait_until
from .services import PrivateRedis, manage, start_worker
from .test_redis_restart import seed_images

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

BUILD_SECONDS = 12
_EVENT = re.compile(r"BUILD-(START|END) pid=(\d+) at=([\d.]+)")


def _builds(logs: str) -> list[tuple[float, float]]:
    """(start, end) of every build the slowed workers ran, from their log lines."""
    starts: dict[str, float] = {}
    spans = []
    for kind, pid, at in _EVENT.findall(logs):
        if kind == "START":
            starts[pid] = float(at)
        elif pid in starts:
            spans.append((starts.pop(pid), float(at)))
    return sorted(spans)


def test_task_outliving_visibility_timeout_never_runs_twice_at_once(
    stack: Stack, stack_http: Http, fault_report: FaultReport, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given stored embeddings, the stack's own worker stopped (it uses another Redis, hence another lock) and two
    # slowed workers sharing a Redis that redelivers unacknowledged messages after 3 s
    seed_images(stack, stack_http)
    assert stack.worker is not None
    stack.worker.stop()
    redis = PrivateRedis(tmp_path_factory.mktemp("visibility-redis"))
    redis.start()
    env = {
        **stack.env,
        "REDIS_URL": redis.url,
        "SLOW_VISIBILITY_TIMEOUT": "3",
        "SLOW_BUILD_SECONDS": str(BUILD_SECONDS),
    }
    workers = [start_worker(env, queues="index", app="tests.reliability.slow_worker", name=f"slow{n}") for n in (1, 2)]
    try:
        # When index_build is sent once
        send = "from workers.tasks import index_build; print('TASK', index_build.delay(force=True).id)"
        out = manage(env, "shell", "-c", send)
        task_id = out.split("TASK ", 1)[1].split()[0]
        # Then Redis redelivers it while the first build still runs (the scenario really happens) ...
        received = f"index_build[{task_id}] received"
        wait_until(lambda: sum(w.tail(10_000).count(received) for w in workers) >= 2, 60, message="no redelivery")
        # ... and after the first build has finished, no two builds ever overlapped
        wait_until(lambda: any("BUILD-END" in w.tail(10_000) for w in workers), BUILD_SECONDS + 60, message="build")
        time.sleep(4)
        logs = "".join(w.tail(10_000) for w in workers)
        spans = _builds(logs)
        deliveries = logs.count(received)
        busy = logs.count("'status': 'busy'")
    finally:
        for worker in workers:
            worker.stop(timeout=30)
        redis.stop()
        stack.start_worker()
    assert spans, "no build ran"
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert not overlaps, f"builds overlapped: {overlaps}"
    assert busy >= 1, "the redelivered copy never met the lock"
    fault_report.record(
        "visibility_timeout_redelivery",
        visibility_timeout_s=3,
        task_seconds=BUILD_SECONDS,
        deliveries=deliveries,
        builds=len(spans),
        skipped_as_busy=busy,
        overlapping_builds=len(overlaps),
    )

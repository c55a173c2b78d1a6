"""PostgreSQL restarts while searches run: clean 503s with a message during the outage, recovery by itself after.

Runs in the services pass against the private stack (its own PostgreSQL cluster, so the shared one is never
touched). gunicorn keeps running throughout: recovery must come from the app's connection handling, not a restart.
"""

from __future__ import annotations

import time

import pytest

from .conftest import FaultReport, Http, Stack, Traffic, wait_until
from .test_redis_restart import seed_images

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

READ_PATHS = {
    "search": "/api/v1/search?q=a+red+circle&limit=5",
    "status": "/api/v1/status",
    "home": "/",
}


def _all_ok(http: Http) -> bool:
    """Every read path answers 200."""
    return all(http.get(path).status == 200 for path in READ_PATHS.values())


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_gives_503_with_message_then_recovers_by_itself(
    stack: Stack, stack_http: Http, fault_report: FaultReport, mode: str
) -> None:
    # Given a serving stack with searchable images and readers hitting search, status and the home page
    seed_images(stack, stack_http)
    wait_until(lambda: _all_ok(stack_http), 60, message="the stack never answered 200 on every read path")
    operations = {
        op: (lambda n, p=path: stack_http.get(p)) for op, path in {**READ_PATHS, "healthz": "/healthz"}.items()
    }
    with Traffic(operations, threads_per_op=2, pause=0.05) as traffic:
        time.sleep(2)
        # When PostgreSQL stops (cleanly, or crashing with "immediate") for a few seconds and then comes back
        down_at = time.monotonic()
        stack.postgres.stop(mode)
        time.sleep(6)
        restart_at = time.monotonic()
        stack.postgres.start()
        up_at = time.monotonic()
        recovered_at = wait_until(
            lambda: _all_ok(stack_http) and time.monotonic(), 60, interval=0.2, message="no recovery after restart"
        )
        time.sleep(3)
        end = time.monotonic()

    # Then nobody got a 500 or a dropped connection: every answer was a 200 or a 503 with a message
    bad = [s for s in traffic.samples if s.status not in (200, 503)]
    assert not bad, f"{len(bad)} answers were neither 200 nor 503, e.g. {bad[:3]}"
    outage = traffic.between(down_at + 0.5, restart_at)
    unavailable = [s for s in outage if s.status == 503]
    assert unavailable, "no request saw the outage: the test did not exercise it"
    assert all("database" in s.detail.lower() for s in unavailable), [s.detail for s in unavailable[:3]]
    # And liveness never depended on the database (an orchestrator must not restart healthy web processes)
    liveness = [s for s in traffic.samples if s.op == "healthz"]
    assert liveness, "no liveness probe ran"
    assert all(s.status == 200 for s in liveness), [s for s in liveness if s.status != 200][:3]
    # And after the restart every operation answers 200 again without any process being restarted
    after = traffic.between(recovered_at + 0.5, end)
    assert after, "no traffic after the recovery"
    assert all(s.status == 200 for s in after), [s for s in after if s.status != 200][:3]
    assert stack.web is not None
    assert stack.web.alive
    fault_report.record(
        f"postgres_restart_{mode}",
        requests=len(traffic.samples),
        outage_seconds=round(up_at - down_at, 1),
        answered_503_during_outage=len(unavailable),
        server_errors=sum(1 for s in traffic.samples if s.status >= 500 and s.status != 503),
        dropped_connections=sum(1 for s in traffic.samples if s.status == 0),
        recovery_seconds_after_restart=round(recovered_at - up_at, 2),
    )

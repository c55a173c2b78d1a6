"""SIGKILL the embedding worker in the middle of a batch of 200 uploads: after a restart every image is ``ready``
with exactly one embedding and findable. Services pass (the private stack's Redis broker, late acknowledgement,
and the periodic reconcile that re-queues ``pending`` images a killed worker took with it)."""

from __future__ import annotations

import time

import pytest

from .conftest import FaultReport, Http, Stack, uploaded_ids, wait_until
from .services import png_pictures
from .test_redis_restart import findable

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

UPLOADS = 200
FILES_PER_REQUEST = 20


def _ready_count(stack: Stack, ids: list[int]) -> int:
    return sum(1 for status, _ in stack.catalogue(ids).values() if status == "ready")


def test_worker_sigkill_mid_batch_of_200_uploads_loses_nothing(
    stack: Stack, stack_http: Http, fault_report: FaultReport
) -> None:
    # Given 200 pictures uploaded while the worker is stopped (their embedding tasks wait in the queue)
    assert stack.worker is not None
    stack.worker.stop()
    ids: list[int] = []
    pictures = list(png_pictures(UPLOADS, seed=3000))
    for start in range(0, UPLOADS, FILES_PER_REQUEST):
        fields = [("files", (f"kill-{start + i}.png", content, "image/png"))
                  for i, (content, _) in enumerate(pictures[start : start + FILES_PER_REQUEST])]  # fmt: skip
        reply = stack_http.request("POST", "/api/v1/images/", fields=fields)
        assert reply.status == 201, reply.text[:300]
        ids.extend(uploaded_ids(reply))
    assert len(set(ids)) == UPLOADS
    # When a worker starts on them and is SIGKILLed (with its pool children) part-way through
    worker = stack.start_worker()
    wait_until(lambda: _ready_count(stack, ids) > 0, 120, interval=0.05, message="the worker embedded nothing")
    worker.kill()
    ready_at_kill = _ready_count(stack, ids)
    assert 0 < ready_at_kill < UPLOADS, f"{ready_at_kill} ready at the kill: it did not land mid-batch"
    killed_at = time.monotonic()
    # And a new worker starts
    stack.start_worker()
    # Then every image ends ready with exactly one embedding, without anyone re-queueing by hand
    wait_until(lambda: stack.all_ready(ids), 240, interval=1, message="images stuck after the worker was killed")
    recovered = time.monotonic() - killed_at
    # And every one is findable
    not_found = [pk for pk in ids if not findable(stack_http, pk)]
    assert not not_found, f"{len(not_found)} ready images cannot be found, e.g. {not_found[:5]}"
    fault_report.record(
        "worker_sigkill_200_uploads",
        uploads=UPLOADS,
        ready_when_killed=ready_at_kill,
        seconds_until_all_ready=round(recovered, 1),
        ready_with_one_embedding=UPLOADS,
        findable=UPLOADS,
        lost_images=0,
    )

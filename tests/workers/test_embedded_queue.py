"""The embedded default's folder queue answers at once: a real worker picks a task up well within a second, and a
burst of tasks runs back to back instead of one per polling interval (kombu's default was a second each)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import SERVICE_MODE, WorkerProcess
from tests.workers.test_index_tasks import broker_purge

pytestmark = [pytest.mark.worker, pytest.mark.timeout(180)]


def _succeeded(worker: WorkerProcess) -> int:
    return sum(1 for line in worker.log if "embed_images" in line and "succeeded in" in line)


def _wait_succeeded(worker: WorkerProcess, count: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout and _succeeded(worker) < count:
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_the_embedded_queue_delivers_a_task_within_a_second_and_a_burst_back_to_back():
    if SERVICE_MODE:
        pytest.skip("embedded-default test: the folder queue (the services pass uses Redis)")
    from workers.tasks import embed_images

    # Given an idle worker on the folder queue
    broker_purge()
    worker = WorkerProcess("embed", {"SEMSEARCH_MODEL_ID": "toy"})
    worker.start()
    try:
        embed_images.delay(image_ids=[])  # the first task pays for imports; not timed
        assert _wait_succeeded(worker, 1, 60) < 60, "the warm-up task never ran"
        time.sleep(1.5)  # the worker is idle and polling again
        # When one task is sent, then a burst of five
        sent = time.monotonic()
        embed_images.delay(image_ids=[])
        _wait_succeeded(worker, 2, 10)
        one = time.monotonic() - sent
        sent = time.monotonic()
        for _ in range(5):
            embed_images.delay(image_ids=[])
        _wait_succeeded(worker, 7, 30)
        burst = time.monotonic() - sent
    finally:
        worker.stop()
    # Then the single task ran within a second, and the five within three (one per second would take five)
    assert _succeeded(worker) == 7, "".join(worker.log[-30:])
    assert one < 1.0, f"a task took {one:.2f} s to be picked up and run"
    assert burst < 3.0, f"five tasks took {burst:.2f} s"

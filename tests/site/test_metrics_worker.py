"""A real Celery worker serves its own metrics (all pool processes) and logs each task with its id and duration."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.conftest import WorkerProcess
from tests.site.test_health import closed_port
from tests.site.test_metrics import sample_value


@pytest.mark.worker
def test_worker_reports_task_timings_on_its_metrics_port(transactional_db: None, tmp_path: Path):
    # Given a worker with a metrics port and a multiprocess folder, as compose runs it
    port = closed_port()
    (tmp_path / "prometheus").mkdir()
    worker = WorkerProcess(
        "index,default",
        {"SEMSEARCH_MODEL_ID": "toy", "SEMSEARCH_WORKER_METRICS_PORT": str(port),
         "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")},
    )  # fmt: skip
    worker.start()
    try:
        # When a task runs in its pool
        from workers.tasks import index_reconcile

        index_reconcile.delay()
        line = worker.wait_for("task workers.tasks.index_reconcile ", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        worker.stop()

    # Then the task's finishing line names it with a duration, and the worker's endpoint counted it
    assert "ms" in line
    assert sample_value(text, "semsearch_task_seconds_count", task="workers.tasks.index_reconcile") >= 1

"""The Celery application; its configuration comes from Django settings (``CELERY_*``).

Signal handlers put each task's id into the log context (the ``request_id`` field), log one line per finished task
with its duration, record ``semsearch_task_seconds``, and, when ``SEMSEARCH_WORKER_METRICS_PORT`` is set, serve the
worker's Prometheus metrics (all pool processes together, via ``PROMETHEUS_MULTIPROC_DIR``) on that port.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from celery import Celery, signals
from kombu import Queue

from core.queues import QUEUES

from .bootstrap import data_dir_prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")
_program = Path(sys.argv[0])
if "celery" in (_program.name, _program.parent.name):  # a worker or beat starting: ``[python -m] celery -A ...``
    data_dir_prepare()

app = Celery("semsearch")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every queue declared: a worker started without ``--queues`` consumes all of them, not only ``default``.
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.autodiscover_tasks(["workers"])

logger = logging.getLogger("semsearch.task")
_running: dict[str, tuple[float, Any]] = {}  # task id -> (start time, log-context token); per pool process


@signals.task_prerun.connect
def _task_started(task_id: str, task: Any, **kwargs: Any) -> None:
    from .logging import request_id_var

    _running[task_id] = (time.perf_counter(), request_id_var.set(task_id))


@signals.task_postrun.connect
def _task_finished(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    from core.metrics import TASK_SECONDS

    from .logging import request_id_var

    started, token = _running.pop(task_id, (None, None))
    if started is None or token is None:
        return
    duration = time.perf_counter() - started
    TASK_SECONDS.labels(task=task.name, state=state or "UNKNOWN").observe(duration)
    logger.info(
        "task %s %s in %.1fms",
        task.name,
        state,
        duration * 1000,
        extra={"task": task.name, "task_id": task_id, "state": state, "duration_ms": round(duration * 1000, 2)},
    )
    request_id_var.reset(token)


@signals.worker_ready.connect
def _serve_worker_metrics(**kwargs: Any) -> None:
    from django.conf import settings

    port = settings.SEMSEARCH_WORKER_METRICS_PORT
    if not port:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    logger.info("worker metrics on port %s", port)


@signals.worker_process_shutdown.connect
def _forget_pool_process(pid: int | None = None, **kwargs: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())

"""gunicorn settings, from the environment (the Docker image and ``docker-compose.yml`` use this file).

Command-line flags override these (``manage.py serve`` passes its own bind, workers and threads).

* ``GUNICORN_BIND`` (``127.0.0.1:8000``), ``WEB_CONCURRENCY`` (``2`` worker processes: each loads the model),
  ``GUNICORN_THREADS`` (``4`` per worker), ``GUNICORN_TIMEOUT`` (``120`` s), ``GUNICORN_MAX_REQUESTS`` (``0``: never
  recycle a worker, since a new one reloads the model), ``GUNICORN_ACCESS_LOG`` (``false``: the request log line of
  ``RequestIdMiddleware`` already has method, path, status, duration and request id).
* ``PROMETHEUS_MULTIPROC_DIR``: when set, prometheus_client writes every worker's metrics to files there and
  ``/metrics`` on any worker reports all of them. The folder is emptied when gunicorn starts, a dead worker's live
  gauges are dropped, and each worker refreshes the catalogue gauges every ``SEMSEARCH_METRICS_REFRESH_SECONDS``
  (``15``). Unset, each worker reports only itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from semsearch_site.logging import logging_config


def _bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = "-" if _bool("GUNICORN_ACCESS_LOG", False) else None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
_log_format = os.environ.get("LOG_FORMAT", "json" if os.environ.get("DATABASE_URL") else "text")
logconfig_dict = logging_config(_log_format, os.environ.get("LOG_LEVEL", "INFO"))

_multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server: Any) -> None:
    """Empty the metrics folder: files left by a previous run would be counted again."""
    if _multiproc_dir:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)
        Path(_multiproc_dir).mkdir(parents=True, exist_ok=True)


def post_worker_init(worker: Any) -> None:
    """In multiprocess mode, keep this worker's copy of the catalogue gauges fresh (see collectors.py)."""
    if _multiproc_dir:
        from semsearch_site.collectors import start_refresh_thread

        start_refresh_thread(float(os.environ.get("SEMSEARCH_METRICS_REFRESH_SECONDS", "15")))


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the multiprocess files."""
    if _multiproc_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

"""A Celery app for the visibility-timeout fault test: the project's app, with Redis redelivering unacknowledged
messages after ``SLOW_VISIBILITY_TIMEOUT`` seconds (swept every second) and every snapshot build slowed down by
``SLOW_BUILD_SECONDS`` and logged with its start and end, so a test can see two builds overlap if they ever do.

Used only as ``celery -A tests.reliability.slow_worker worker`` by ``test_visibility_timeout.py``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import worker_process_init

from semsearch_site.celery import app

app.conf.broker_transport_options = {
    **(app.conf.broker_transport_options or {}),
    "visibility_timeout": int(os.environ.get("SLOW_VISIBILITY_TIMEOUT", "3")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}


@worker_process_init.connect
def _slow_builds(**kwargs: Any) -> None:
    """Runs in each pool process once Django is set up (importing the index any earlier would be too soon)."""
    import search.index.build as build

    real = build.snapshot_build
    delay = float(os.environ.get("SLOW_BUILD_SECONDS", "12"))

    def slow(*, model_key: str) -> Any:
        print(f"BUILD-START pid={os.getpid()} at={time.time():.3f}", flush=True)
        time.sleep(delay)
        try:
            return real(model_key=model_key)
        finally:
            print(f"BUILD-END pid={os.getpid()} at={time.time():.3f}", flush=True)

    build.snapshot_build = slow


__all__ = ["app"]

"""Catalogue gauges read at scrape time: images by status, queue depth, snapshot version and age.

Single process (embedded default, tests): ``StatusCollector`` sits in the default registry and refreshes the gauges
each time ``/metrics`` is scraped. Several gunicorn workers (``PROMETHEUS_MULTIPROC_DIR`` set): django-prometheus
then exports only the multiprocess files, so each worker runs ``start_refresh_thread`` (from ``gunicorn.conf.py``)
and the gauges, in ``mostrecent`` mode, report the latest refresh. Importing this module registers the collector
once per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.metrics import IMAGES_BY_STATUS, QUEUE_DEPTH, SNAPSHOT_AGE_SECONDS, SNAPSHOT_VERSION

logger = logging.getLogger(__name__)

GAUGES = (IMAGES_BY_STATUS, QUEUE_DEPTH, SNAPSHOT_VERSION, SNAPSHOT_AGE_SECONDS)


def _refresh_images() -> None:
    from images.selectors import image_status_counts

    for status, count in image_status_counts().items():
        if status != "total":
            IMAGES_BY_STATUS.labels(status=status).set(count)


def _refresh_queues() -> None:
    from core.queues import queue_depths

    for queue, depth in queue_depths().items():
        QUEUE_DEPTH.labels(queue=queue).set(depth)


def _refresh_snapshot() -> None:
    from django.utils import timezone

    from search.state import active_model_key, snapshot_latest

    newest = snapshot_latest(model_key=active_model_key())
    SNAPSHOT_VERSION.set(newest.version if newest else 0)
    SNAPSHOT_AGE_SECONDS.set((timezone.now() - newest.created_at).total_seconds() if newest else 0)


def refresh_status_gauges() -> None:
    """Set every catalogue gauge from the database and broker. Never raises: a failing part keeps its last value."""
    for part in (_refresh_images, _refresh_queues, _refresh_snapshot):
        try:
            part()
        except Exception:  # a scrape must succeed even while the database or broker is down
            logger.warning("metrics: could not refresh %s", part.__name__.removeprefix("_refresh_"), exc_info=True)


class StatusCollector(Collector):
    """Refreshes the catalogue gauges, then yields them; registered once in the default registry."""

    def collect(self) -> Iterator[Metric]:
        refresh_status_gauges()
        for gauge in GAUGES:
            yield from gauge.collect()

    def describe(self) -> Iterator[Metric]:
        # Without describe() the registry would call collect() (and query the database) at registration time.
        for gauge in GAUGES:
            yield from gauge.describe()


def start_refresh_thread(interval: float) -> threading.Event:
    """Refresh the gauges now and every ``interval`` seconds in a daemon thread; set the returned event to stop."""
    stop = threading.Event()

    def loop() -> None:
        from django.db import connection

        while True:
            refresh_status_gauges()
            connection.close()  # outside a request nothing else closes this thread's connection
            if stop.wait(interval):
                return

    threading.Thread(target=loop, name="metrics-refresh", daemon=True).start()
    return stop


STATUS_COLLECTOR = StatusCollector()
REGISTRY.register(STATUS_COLLECTOR)

"""Prometheus metrics (prometheus_client), exported with django-prometheus's at ``/metrics``.

Request counts and latencies by view and status come from django-prometheus's middleware; these are ours.
The catalogue gauges (images, queue depth, snapshot) are refreshed from the database and broker by
``semsearch_site.collectors``; they use ``mostrecent`` so that, with several gunicorn workers writing them in
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), a scrape reports the latest refresh rather than one per process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SEARCH_STAGE_SECONDS = Histogram(
    "semsearch_search_stage_seconds",
    "Time spent in each stage of a search.",
    ["stage"],  # encode, index, hydrate
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SEARCHES = Counter("semsearch_searches_total", "Searches run, by interface.", ["interface"])
IMAGES_EMBEDDED = Counter("semsearch_images_embedded_total", "Images embedded by this process.", ["model_key"])
EMBED_BATCH_SECONDS = Histogram(
    "semsearch_embed_batch_seconds", "Wall time of one embedding batch.", buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120)
)
OCR_PICTURES = Counter("semsearch_ocr_pictures_total", "Pictures read by OCR, by outcome.", ["status"])
AUTOTAGS_PROPOSED = Counter("semsearch_autotags_proposed_total", "Automatic tags proposed, by model.", ["model_key"])
TASK_SECONDS = Histogram(
    "semsearch_task_seconds",
    "Wall time of Celery tasks, by task name and final state.",
    ["task", "state"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)

# Refreshed from the database and broker at scrape time, not by the code paths that change them, and exported by
# collectors.StatusCollector (so they are not registered here): see collectors.py.
IMAGES_BY_STATUS = Gauge(
    "semsearch_images", "Images in the catalogue, by status.", ["status"], multiprocess_mode="mostrecent", registry=None
)
QUEUE_DEPTH = Gauge(
    "semsearch_queue_depth", "Messages waiting in each queue.", ["queue"], multiprocess_mode="mostrecent", registry=None
)
SNAPSHOT_VERSION = Gauge(
    "semsearch_index_snapshot_version",
    "Version of the newest index snapshot of the active model (0: none built yet).",
    multiprocess_mode="mostrecent",
    registry=None,
)
SNAPSHOT_AGE_SECONDS = Gauge(
    "semsearch_index_snapshot_age_seconds",
    "Seconds since the newest index snapshot of the active model was built (0: none built yet).",
    multiprocess_mode="mostrecent",
    registry=None,
)

"""Prometheus metrics (prometheus_client), exported with django-prometheus's at ``/metrics``.

Request counts and latencies by view and status come from django-prometheus's middleware; these are ours.
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
IMAGES_BY_STATUS = Gauge("semsearch_images", "Images in the catalogue, by status.", ["status"])
QUEUE_DEPTH = Gauge("semsearch_queue_depth", "Messages waiting in each queue.", ["queue"])
SNAPSHOT_VERSION = Gauge("semsearch_index_snapshot_version", "Version of the snapshot this process serves.")
SNAPSHOT_AGE_SECONDS = Gauge("semsearch_index_snapshot_age_seconds", "Age of the snapshot this process serves.")

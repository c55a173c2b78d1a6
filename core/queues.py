"""Read-only views of the background machinery: queue depths and broker reachability (any layer may ask)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

QUEUES = ("embed", "index", "enrich", "default")


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue (not counting ones a worker holds). Empty dict when the broker is unreachable."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        counts = dict.fromkeys(QUEUES, 0)
        for message in folder.glob("*.msg"):
            # kombu names the files "<timestamp>_<uuid>.<queue>.msg"
            queue = message.name.partition(".")[2].removesuffix(".msg")
            counts[queue] = counts.get(queue, 0) + 1
        return counts
    if url.startswith("redis"):
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            return {queue: int(client.llen(queue)) for queue in QUEUES}
        except redis.RedisError:
            return {}
    return {}


def broker_check() -> str | None:
    """None when the broker answers, else a one-line reason."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return None if folder.is_dir() else f"The broker folder {folder} is missing."
    if url.startswith("redis"):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        except redis.RedisError as exc:
            return f"Redis at the broker URL does not answer ({exc})."
        return None
    return None

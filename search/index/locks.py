"""Single-flight locks for index maintenance: Redis in service mode, a file lock in the embedded default.

The Redis lock has a short TTL that a background thread keeps extending while its holder lives, so a build that
outlasts the broker's visibility timeout (and is redelivered to another worker) still never runs twice at once,
and the lock of a killed worker frees itself within ``REDIS_LOCK_TTL_S``. The file lock is an OS lock that dies
with its process.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

REDIS_LOCK_TTL_S = 60
REDIS_LOCK_RENEW_S = 20


def _lock_name(name: str) -> str:
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()[:24]


@contextlib.contextmanager
def _redis_lock(name: str) -> Iterator[bool]:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5, socket_timeout=10)
    lock = client.lock(f"semsearch:lock:{_lock_name(name)}", timeout=REDIS_LOCK_TTL_S, thread_local=False)
    if not lock.acquire(blocking=False):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(REDIS_LOCK_RENEW_S):
            try:
                lock.extend(REDIS_LOCK_TTL_S, replace_ttl=True)
            except redis.RedisError:
                logger.exception("could not extend the %s lock; another builder may start", name)

    renewer = threading.Thread(target=renew, name=f"lock-renew-{name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            lock.release()


@contextlib.contextmanager
def _file_lock(name: str) -> Iterator[bool]:
    from filelock import FileLock, Timeout

    folder = Path(settings.INDEX_ROOT)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f".lock-{_lock_name(name)}"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def maintenance_lock(*, name: str) -> Iterator[bool]:
    """Hold the named cluster-wide lock if free: yields True when held, False when another holder has it.

    Never waits; Redis when ``REDIS_URL`` is set (workers on several machines), else a file lock in ``INDEX_ROOT``.
    """
    manager = _redis_lock(name) if settings.REDIS_URL else _file_lock(name)
    with manager as held:
        yield held

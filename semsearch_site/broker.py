"""The Redis broker transport: kombu's, with one fix (``CELERY_BROKER_TRANSPORT`` names it for ``redis://`` URLs).

When the broker connection drops while a worker waits on Redis and holds unacknowledged messages (a task running
with late acknowledgement), Celery 5.7 first collects the connection (which forgets the connection's details) and
then closes it. Closing the channel puts the unacknowledged messages back, which needs a Redis client; kombu 5.7
builds one from the forgotten details and fails with ``AttributeError``. That is not a connection error, so the
worker logged "Unrecoverable error" and stopped for good: one Redis restart during a task ended all background work.

Here a channel whose connection is gone raises a *connection* error instead, which Celery handles by reconnecting.
Nothing is lost: Redis keeps unacknowledged messages and hands them out again after the visibility timeout (if
the restart wiped them, the periodic reconcile re-enqueues the images they were for), and every task is idempotent.
``tests/site/test_broker.py`` shows the failure with kombu's own transport and its absence with this one.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed (collected after a connection loss)")
        # kombu's stubs (celery-types) do not declare this private method that the override wraps.
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class RedisTransport(kombu_redis.Transport):
    """kombu's Redis transport whose channels fail with a connection error once their connection is collected."""

    Channel = Channel

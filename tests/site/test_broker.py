"""The Redis broker transport survives the connection loss that made kombu's own stop a worker for good.

The sequence is Celery 5.7's after a lost broker connection (``Consumer.on_connection_error_after_connected``):
collect the connection, then close it while ignoring connection errors. Before it, the channel holds an
unacknowledged message (a task running with late acknowledgement) and waits on Redis (a BRPOP in flight), and
then the Redis server stops. Runs against a private ``redis-server`` (it is stopped), in the services pass.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Producer, Queue
from kombu.common import ignore_errors

from semsearch_site.broker import RedisTransport
from tests.conftest import require_services
from tests.reliability.services import PrivateRedis

KOMBU_TRANSPORT = "kombu.transport.redis:Transport"
OUR_TRANSPORT = "semsearch_site.broker:RedisTransport"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    require_services()
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _lose_connection_mid_task(redis_server: PrivateRedis, transport: str) -> None:
    """Hold an unacknowledged message with a BRPOP in flight, stop Redis, then collect and close as Celery does."""
    connection = Connection(redis_server.url, transport=transport)
    channel = connection.default_channel
    # Like a worker: a fanout queue of its own (the remote-control mailbox) and a work queue it consumes
    Queue("mailbox", Exchange("broadcast", type="fanout"), auto_delete=True, channel=channel).declare()
    work = Queue("work", Exchange("work"), "work", channel=channel)
    work.declare()
    Producer(channel).publish({"task": 1}, exchange=work.exchange, routing_key="work", declare=[work])
    message = work.get(no_ack=False)
    assert message is not None
    channel.basic_consume("work", False, lambda delivered: None, "consumer")
    with pytest.raises(socket.timeout):
        connection.drain_events(timeout=0.2)  # leaves a BRPOP in flight, as a waiting worker does
    assert channel.qos._delivered, "the message is unacknowledged"

    redis_server.stop()
    connection.collect(socket_timeout=0.5)
    ignore_errors(connection, connection.close)


def test_kombu_transport_fails_with_a_non_connection_error(redis_server: PrivateRedis) -> None:
    # The failure this module's transport exists for (if kombu fixes it, the fix can go: see broker.py)
    with pytest.raises(AttributeError):
        _lose_connection_mid_task(redis_server, KOMBU_TRANSPORT)


def test_our_transport_lets_celery_reconnect(redis_server: PrivateRedis) -> None:
    _lose_connection_mid_task(redis_server, OUR_TRANSPORT)  # raises nothing Celery would treat as unrecoverable
    # And a new connection works once Redis is back
    redis_server.start()
    with Connection(redis_server.url, transport=OUR_TRANSPORT) as connection:
        queue = Queue("work", Exchange("work"), "work", channel=connection.default_channel)
        queue.declare()
        Producer(connection.default_channel).publish({"task": 2}, exchange=queue.exchange, routing_key="work")
        message = queue.get(no_ack=True)
        assert message is not None
        assert message.payload == {"task": 2}


def test_service_mode_uses_our_transport() -> None:
    require_services()
    from semsearch_site.celery import app

    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, RedisTransport)
    assert settings.CELERY_BROKER_TRANSPORT == OUR_TRANSPORT

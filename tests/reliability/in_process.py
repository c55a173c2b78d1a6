"""The project's WSGI application run inside a test, for the schema-driven tests (fuzzing, the error contract)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.throttling import SimpleRateThrottle


@contextmanager
def in_process_app(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[None]:
    """The toy model, no throttling, and the database connection kept open across requests.

    The WSGI handler closes database connections when a request ends; inside a test transaction that would close
    the test's own connection, so (as Django's test client does) that hook is off meanwhile.
    """
    settings.SEMSEARCH_MODEL_ID = "toy"
    rates = dict.fromkeys(("search", "upload", "read", "fetch"), "1000000/min")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)

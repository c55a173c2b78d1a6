"""Project-wide middleware: request ids and one log line per request, and a clean 503 while the database is down."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import collectors  # noqa: F401  (registers the scrape-time metrics collector once per web process)
from .logging import request_id_var

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("semsearch.request")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Probes and scrapes arrive every few seconds; their lines are DEBUG so they do not drown the log.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the client (if sane) or makes one; logs carry it and the response echoes it.

    Logs one line per request (``semsearch.request``) with method, path, status and duration in milliseconds, and
    reports that duration in a ``Server-Timing`` header (``app;dur=12.3``), so a client (a browser's developer
    tools, ``bench/search.py``) can tell the server's time from the network's.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            response["X-Request-ID"] = request_id
            response["Server-Timing"] = f"app;dur={duration_ms}"
            request_logger.log(
                logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO,
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                },
            )
        finally:
            request_id_var.reset(token)
        return response


class DatabaseUnavailableMiddleware:
    """Turns a lost database connection into a 503 with a message instead of a 500 traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)) or (
            isinstance(exception, DatabaseError) and "connection" in str(exception).lower()
        ):
            logger.error("database unavailable: %s", exception)
            return database_unavailable_response()
        return None


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The database is unavailable right now; please retry in a few seconds.", "code": "db_down"},
        status=503,
    )
    response["Retry-After"] = "5"
    return response

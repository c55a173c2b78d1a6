"""The REST edge: turns domain errors (``core.errors``) and a lost database into clear 4xx/503 responses."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import DomainError


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus domain errors as ``{"detail", "code"}`` and a lost database as 503."""
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        response = Response(
            {"detail": "The database is unavailable right now; please retry in a few seconds.", "code": "db_down"},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    return exception_handler(exc, context)

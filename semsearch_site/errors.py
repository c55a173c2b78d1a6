"""The REST edge: turns domain errors (``core.errors``) and a lost database into clear 4xx/503 responses."""

from __future__ import annotations

import math
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from core.errors import DomainError


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as ``{"detail", "code"}`` (plus ``fields`` for validation errors; the shape is
    ``semsearch_site.api_schema.ErrorSerializer``): domain errors, DRF's
    own (validation, authentication, permission, throttling with ``Retry-After``, parsing) and a lost database
    (503 with ``Retry-After``)."""
    if isinstance(exc, DomainError):
        response = Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, (OperationalError, InterfaceError)):
        response = Response(
            {"detail": "The database is unavailable right now; please retry in a few seconds.", "code": "db_down"},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    handled = exception_handler(exc, context)
    if handled is None:
        return None
    return _reshaped(exc, handled)


def _reshaped(exc: Exception, response: Response) -> Response:
    """DRF's own error response with its body in the one shape."""
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        codes = _codes(exc.get_codes())
        name, messages = next(iter(fields.items()), ("", ["Invalid input."]))
        extra = f" ({len(fields) - 1} more in fields)" if len(fields) > 1 else ""
        prefix = "" if name == api_settings.NON_FIELD_ERRORS_KEY else f"{name}: "
        code = "unknown_parameter" if "unknown_parameter" in codes else "invalid"
        response.data = {"detail": f"{prefix}{messages[0]}{extra}", "code": code, "fields": fields}
    elif isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 1))  # (DRF's stubs do not declare ``wait``)
        response.data = {"detail": f"Too many requests; retry in {wait} s.", "code": "throttled"}
        response["Retry-After"] = str(wait)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = (detail.code if isinstance(detail, exceptions.ErrorDetail) else None) or exc.default_code
        text = str(detail) if isinstance(detail, str) else "; ".join(m for ms in _flatten(detail).values() for m in ms)
        response.data = {"detail": text, "code": str(code or exc.default_code)}
    return response


def _flatten(detail: Any, path: str = "") -> dict[str, list[str]]:
    """``{dotted path: [messages]}`` from DRF's nested error detail (dicts, lists of dicts, lists of messages)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.update(_flatten(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{path}.{index}" if path else str(index)))
    elif isinstance(detail, list):
        out[path or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in detail]
    else:
        out[path or api_settings.NON_FIELD_ERRORS_KEY] = [str(detail)]
    return {key: messages for key, messages in out.items() if messages}


def _codes(codes: Any) -> set[str]:
    if isinstance(codes, dict):
        return set().union(*(_codes(value) for value in codes.values())) if codes else set()
    if isinstance(codes, list):
        return set().union(*(_codes(value) for value in codes)) if codes else set()
    return {str(codes)}

"""The OpenAPI schema's error responses, documented once for every operation.

Every API error has one shape (``ErrorSerializer``, produced by ``semsearch_site.errors.api_exception_handler``).
``ApiAutoSchema`` adds it to each operation for the statuses any operation can answer with, unless the view
documents that status itself; 429 and 503 also document ``Retry-After``.
"""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The one shape of every API error (documented for every operation by ``semsearch_site.api_schema``)."""

    detail = serializers.CharField(help_text="One sentence saying what went wrong and what to do")
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, unknown_parameter, throttled")
    # A declared field named "fields": DRF's metaclass pops it from the class, so it never shadows ``.fields``.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: messages per parameter (nested ones as dotted paths, terms.0.text)",
    )


ERROR_RESPONSES = {
    "400": "Invalid input: `code` is `invalid` (with `fields`), `unknown_parameter` (with `fields`, listing the "
    "accepted names) or a domain code such as `invalid_query`",
    "401": "No valid credentials, and this operation (or reading, on a private server) needs them",
    "403": "The credentials lack the permission this operation needs",
    "404": "No such image (or page)",
    "429": "Too many requests in this throttle scope; retry after `Retry-After` seconds",
    "503": "The model cannot be loaded, the database is unavailable or remote fetching is busy; see `Retry-After`",
}
BODY_ERRORS = {"415": "The request body's content type is not accepted by this operation"}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying"},
}


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's schema, plus the shared error responses on every operation."""

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction=direction)
        errors = dict(ERROR_RESPONSES)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(BODY_ERRORS)
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, direction=direction
                )
            if code in ("429", "503"):
                responses[code].setdefault("headers", {}).update(RETRY_AFTER)
        return dict(sorted(responses.items()))

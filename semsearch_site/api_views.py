"""Views at the API edge outside the apps: the generated OpenAPI schema, and a JSON 404 for unknown API URLs."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request


class SchemaView(SpectacularAPIView):
    """The generated schema: YAML, or JSON with ``?format=json``. The API's own ``format`` is a catalogue filter,
    so DRF's URL format switch is off project-wide and honoured here alone."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        wanted = request.query_params.get("format")
        for renderer in self.get_renderers() if wanted else ():
            if renderer.format == wanted:
                return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force=force)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 for a URL nothing serves: the API's error shape under ``/api/``, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"There is no API operation at {request.path[:200]}.", "code": "not_found"},
                            status=404)  # fmt: skip
    return page_not_found(request, exception)

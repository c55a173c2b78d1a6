"""The view serving the generated OpenAPI schema."""

from __future__ import annotations

from typing import Any

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

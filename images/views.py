"""Serving stored originals and thumbnails so that no browser could ever execute them."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_safe

from images.formats import BY_EXTENSION
from images.services.storage import MEDIA_NAME, media_file_open


@require_safe
def media_serve(request: HttpRequest, name: str) -> FileResponse:
    """Stream a content-addressed file with its real image type, ``nosniff`` and a sandboxing CSP.

    Only names of the exact form ``originals|thumbnails/ab/cd/<sha256>.<ext>`` are served, so no path can
    escape the media folder."""
    match = MEDIA_NAME.match(name)
    if not match or match["ext"] not in BY_EXTENSION:
        raise Http404("No such file.")
    try:
        handle = media_file_open(name=name)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise Http404("No such file.") from exc
    response = FileResponse(handle, content_type=BY_EXTENSION[match["ext"]].mime_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = f'inline; filename="{match["hash"]}.{match["ext"]}"'
    # Content-addressed: the bytes behind a name never change.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response

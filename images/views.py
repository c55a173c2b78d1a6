"""Serving stored originals and thumbnails so that no browser could ever execute them."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from images.api.permissions import PRIVATE_MESSAGE, reading_allowed
from images.formats import BY_EXTENSION
from images.services.storage import MEDIA_NAME, media_file_open


def _media_reader(request: HttpRequest) -> object | None:
    """The session user, else the user of a valid ``Authorization: Token`` header (API clients), else None."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        return None
    return found[0] if found else None


@require_safe
def media_serve(request: HttpRequest, name: str) -> HttpResponseBase:
    """Stream a content-addressed file with its real image type, ``nosniff`` and a sandboxing CSP; 401 when
    reading is private and the caller has neither a session nor a token.

    Only names of the exact form ``originals|thumbnails/ab/cd/<sha256>.<ext>`` are served, so no path can
    escape the media folder."""
    if not reading_allowed(user=_media_reader(request)):
        refusal = JsonResponse({"detail": PRIVATE_MESSAGE, "code": "not_authenticated"}, status=401)
        refusal["WWW-Authenticate"] = "Token"
        return refusal
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
    # Content-addressed: the bytes behind a name never change (private: kept by the browser alone).
    audience = "public" if settings.SEMSEARCH_SEARCH_PUBLIC else "private"
    response["Cache-Control"] = f"{audience}, max-age=31536000, immutable"
    return response

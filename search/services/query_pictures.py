"""Pictures dropped into the web UI: encoded once, kept briefly in the cache under a token.

The page then searches with ``?picture=<token>`` like any other GET, so pagination, filters and "add text" work
without uploading the picture again. The cache is not a source of truth: an expired token just asks for the picture
again.
"""

from __future__ import annotations

import base64
import io
import secrets

import numpy as np
from django.core.cache import cache

from search.query import QueryError, QueryTerm

from .query_vectors import query_vector_build

TTL_SECONDS = 2 * 60 * 60
_PREFIX = "semsearch:picture:"


def query_picture_store(*, data: bytes, model_id: str | None = None) -> str:
    """Encode the picture ``data`` and cache its vector and a small preview; returns the token.

    Raises ``QueryError`` for an unreadable picture and ``ModelUnavailableError`` when the model cannot load.
    Side effect: one cache entry that expires after ``TTL_SECONDS``.
    """
    if not data:
        raise QueryError("The picture is empty.")
    encoded = query_vector_build(terms=(QueryTerm(kind="image", image=data),), model_id=model_id)
    token = secrets.token_urlsafe(12)
    cache.set(
        _PREFIX + token,
        {"model_key": encoded.model_key, "vector": encoded.vector.tobytes(), "preview": _preview(data)},
        TTL_SECONDS,
    )
    return token


def query_picture_load(*, token: str, weight: float = 1.0) -> tuple[QueryTerm, str] | None:
    """The cached picture as a ``vector`` term plus its preview data URL, or ``None`` when it expired."""
    if not token or len(token) > 64:
        return None
    entry = cache.get(_PREFIX + token)
    if not entry:
        return None
    vector = np.frombuffer(entry["vector"], dtype=np.float32)
    term = QueryTerm(kind="vector", vector=vector, model_key=entry["model_key"], weight=weight)
    return term, entry["preview"]


def _preview(data: bytes) -> str:
    """A ~96 px JPEG data URL of the picture (empty string if it cannot be made)."""
    from images.services.decoding import ImageRejectedError, decode_image

    try:
        picture = decode_image(data, max_side=192).image.copy()
    except ImageRejectedError:
        return ""
    picture.thumbnail((96, 96))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()

"""Content-addressed files under ``MEDIA_ROOT``: originals and thumbnails named by the sha256 of the original.

Writes are atomic (temporary file, fsync, ``os.replace``), so a reader never sees half a file, and idempotent: a
name already present with the right size is reused. Files left behind by a rolled-back row are harmless; the next
ingest of the same bytes reuses them.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from PIL import Image as PILImage

# The only names the media view serves: traversal is impossible because nothing else matches.
MEDIA_NAME = re.compile(
    r"^(?P<kind>originals|thumbnails)/[0-9a-f]{2}/[0-9a-f]{2}/(?P<hash>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{2,5})$"
)
THUMBNAIL_FORMAT = "WEBP"
THUMBNAIL_EXT = "webp"


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def media_name(*, kind: str, content_hash: str, ext: str) -> str:
    return f"{kind}/{content_hash[:2]}/{content_hash[2:4]}/{content_hash}.{ext}"


def media_file_write(*, name: str, data: bytes) -> None:
    """Store ``data`` at ``name`` (relative to MEDIA_ROOT) atomically; a present file of the same size is kept."""
    target = media_root() / name
    if target.is_file() and target.stat().st_size == len(data):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def media_file_delete(*, name: str) -> None:
    """Remove a stored file if present (idempotent)."""
    if name and MEDIA_NAME.match(name):
        (media_root() / name).unlink(missing_ok=True)


def thumbnail_render(*, image: PILImage.Image) -> bytes:
    """A WebP no larger than ``SEMSEARCH_THUMBNAIL_SIZE`` on its longer side, from an upright RGB picture."""
    size = int(getattr(settings, "SEMSEARCH_THUMBNAIL_SIZE", 384))
    thumb = image.copy()
    thumb.thumbnail((size, size), PILImage.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    thumb.save(buffer, format=THUMBNAIL_FORMAT, quality=82, method=4)
    return buffer.getvalue()

"""Content-addressed media in Django's default storage: originals and thumbnails named by the sha256 of the original.

Everything goes through the storage API (``default_storage``), so ``STORAGES`` can move media to object storage
(django-storages) without a code change.

Writes are atomic (temporary file, fsync, ``os.replace``), so a reader never sees half a file, and idempotent: a
name already present with the right size is reused. Files left behind by a rolled-back row are harmless; the next
ingest of the same bytes reuses them.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage, storages
from django.utils.encoding import filepath_to_uri
from PIL import Image as PILImage

# The only names the media view serves: traversal is impossible because nothing else matches.
MEDIA_NAME = re.compile(
    r"^(?P<kind>originals|thumbnails)/[0-9a-f]{2}/[0-9a-f]{2}/(?P<hash>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{2,5})$"
)
# Names ``filepath_to_uri`` would return unchanged (every stored name): their URL needs no quoting.
_URL_AS_IS = re.compile(r"[A-Za-z0-9/_.~!*()'-]*")
THUMBNAIL_FORMAT = "JPEG"
THUMBNAIL_EXT = "jpg"
THUMBNAIL_QUALITY = 85
# Local media folders this process has made or found (at most 2 × 65,536: two hex levels per kind).
_FOLDERS_MADE: set[str] = set()


def media_name(*, kind: str, content_hash: str, ext: str) -> str:
    return f"{kind}/{content_hash[:2]}/{content_hash[2:4]}/{content_hash}.{ext}"


def media_file_exists(*, name: str | None) -> bool:
    """Whether the storage holds ``name``."""
    return name is not None and name != "" and default_storage.exists(name)


def media_file_write(*, name: str, data: bytes) -> None:
    """Store ``data`` at ``name`` in the default storage; a present file of the same size is kept (idempotent).

    On a local filesystem the write is atomic (temporary file, fsync, ``os.replace``); other backends (object
    storage) publish an object in one request, which is atomic too.
    """
    storage = default_storage
    present = storage.exists(name)
    if present and storage.size(name) == len(data):
        return
    if not _is_local(storage):
        if present:
            storage.delete(name)  # a partial object of another size: replace it (save() would pick another name)
        storage.save(name, ContentFile(data))
        return
    target = Path(storage.path(name))
    try:
        fd, tmp = tempfile.mkstemp(dir=_folder_made(target.parent), prefix=".tmp-")
    except FileNotFoundError:  # the folder was removed since this process made it
        _FOLDERS_MADE.discard(str(target.parent))
        fd, tmp = tempfile.mkstemp(dir=_folder_made(target.parent), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _folder_made(folder: Path) -> Path:
    """``folder``, made (with its parents) unless this process made or found it before: a write then costs no
    ``mkdir`` calls (two a file before, most of them failing on a folder that is there: ~1 ms a picture)."""
    if str(folder) not in _FOLDERS_MADE:
        folder.mkdir(parents=True, exist_ok=True)
        _FOLDERS_MADE.add(str(folder))
    return folder


def media_file_delete(*, name: str | None) -> None:
    """Remove a stored file if present (idempotent)."""
    if name and MEDIA_NAME.match(name) and default_storage.exists(name):
        default_storage.delete(name)


def media_file_open(*, name: str) -> IO[bytes]:
    """The stored file ``name`` opened for binary reading; raises ``FileNotFoundError`` when it is missing."""
    if not MEDIA_NAME.match(name) or not default_storage.exists(name):
        raise FileNotFoundError(name)
    return default_storage.open(name, "rb")


def media_source(*, name: str | None) -> str | bytes | None:
    """What a decoder should read for ``name``: its local path when the storage has one (decoders can then read
    only what they need), else its bytes; None when it is not stored."""
    if not name or not media_file_exists(name=name):
        return None
    if _is_local(default_storage):
        return default_storage.path(name)
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def media_url(*, name: str) -> str | None:
    """The URL the storage serves ``name`` at (``MEDIA_URL`` + name for the local one), or None for no file."""
    return default_storage.url(name) if name else None


def media_url_maker() -> Callable[[str | None], str | None]:
    """``media_url`` for many names: the local storage's URLs without ``urljoin`` per name (a page of hits builds
    about fifty), quoted only when a name needs it; any other storage answers through its own ``url``."""
    storage = storages["default"]  # the instance behind the lazy ``default_storage``
    if storage.__class__ is not FileSystemStorage:
        return lambda name: storage.url(name) if name else None
    base = storage.base_url
    return lambda name: (base + name if _URL_AS_IS.fullmatch(name) else base + filepath_to_uri(name)) if name else None


def _is_local(storage: Storage) -> bool:
    """A folder on this machine (``FileSystemStorage``): files can be written atomically and read by path."""
    return isinstance(storage, FileSystemStorage)


def thumbnail_render(*, image: PILImage.Image) -> bytes:
    """A JPEG no larger than ``SEMSEARCH_THUMBNAIL_SIZE`` on its longer side, from an upright RGB picture."""
    size = int(settings.SEMSEARCH_THUMBNAIL_SIZE)
    thumb = image.copy()
    # Bilinear (Pillow scales its support with the reduction, so it is still antialiased) and JPEG: at 384 px, 0.3 ms
    # to encode against WebP's 2.1 ms and 1.3 against 2.8 ms to reduce with Lanczos, files ~40 % larger (16 KB), and
    # the worker decodes it in two thirds of the time; the vectors made from it stay within cosine 0.9998 of the
    # original's (bench/decode_once.py, option thumbnail_jpeg_bilinear). Thumbnailing was most of an upload's CPU.
    thumb.thumbnail((size, size), PILImage.Resampling.BILINEAR, reducing_gap=3.0)
    buffer = io.BytesIO()
    thumb.save(buffer, format=THUMBNAIL_FORMAT, quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()

"""The image formats semsearch accepts: the one place that names them.

Each format has the name people see (and that ``Image.format`` stores), the names Pillow reports for it, its MIME
type, the extension its stored original gets, and the file suffixes folder imports and the Python API recognise.
Everything else (decoding's allowlist, media serving, folder import, filters, help texts) derives from ``FORMATS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    name: str
    pil_names: tuple[str, ...]
    mime_type: str
    extension: str
    suffixes: tuple[str, ...]


FORMATS: tuple[ImageFormat, ...] = (
    # MPO is what Pillow calls many camera JPEGs.
    ImageFormat("JPEG", ("JPEG", "MPO"), "image/jpeg", "jpg", (".jpg", ".jpeg", ".jpe")),
    ImageFormat("PNG", ("PNG",), "image/png", "png", (".png",)),
    ImageFormat("WebP", ("WEBP",), "image/webp", "webp", (".webp",)),
    ImageFormat("GIF", ("GIF",), "image/gif", "gif", (".gif",)),
    ImageFormat("BMP", ("BMP",), "image/bmp", "bmp", (".bmp",)),
    ImageFormat("TIFF", ("TIFF",), "image/tiff", "tiff", (".tif", ".tiff")),
    ImageFormat("HEIC", ("HEIF",), "image/heic", "heic", (".heic", ".heif")),
    ImageFormat("AVIF", ("AVIF",), "image/avif", "avif", (".avif",)),
)

FORMAT_NAMES: tuple[str, ...] = tuple(fmt.name for fmt in FORMATS)
FORMAT_NAMES_TEXT = ", ".join(FORMAT_NAMES)  # "JPEG, PNG, WebP, ..." for messages and help texts
BY_PIL_NAME: dict[str, ImageFormat] = {pil: fmt for fmt in FORMATS for pil in fmt.pil_names}
BY_NAME: dict[str, ImageFormat] = {fmt.name: fmt for fmt in FORMATS}
BY_EXTENSION: dict[str, ImageFormat] = {fmt.extension: fmt for fmt in FORMATS}
IMAGE_SUFFIXES: frozenset[str] = frozenset(suffix for fmt in FORMATS for suffix in fmt.suffixes)


def format_name_normalise(value: str) -> str | None:
    """The stored name for ``value`` given in any case (``"webp"`` -> ``"WebP"``), or None if it is not one."""
    wanted = value.strip().lower()
    return next((fmt.name for fmt in FORMATS if fmt.name.lower() == wanted), None)

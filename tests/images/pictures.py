"""Pictures generated with Pillow for the catalogue tests (nothing is downloaded)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image as PILImage


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def picture_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (32, 24), color=(200, 30, 30), mode: str = "RGB", **save
) -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, color).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def halves_jpeg(*, orientation: int) -> bytes:
    """A 40×20 JPEG whose left half is red and right half blue, tagged with an EXIF orientation."""
    image = PILImage.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int, *, idat: bytes = b"") -> bytes:
    """A PNG header that declares ``width``×``height`` pixels followed by (almost) no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = png_chunk(b"IHDR", header)
    if idat:
        body += png_chunk(b"IDAT", zlib.compress(idat))
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


def rgb_close(actual, expected, tolerance: int = 24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual[:3], expected, strict=True))

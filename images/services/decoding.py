"""Safe decoding: an allowlist of formats, a pixel limit checked before any pixel is decoded, truncated files
rejected, EXIF orientation applied, every colour mode turned into upright 8-bit RGB (alpha composited on white)."""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np
import simplejpeg
from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from core.errors import DomainError
from images.formats import BY_PIL_NAME, FORMAT_NAMES_TEXT

# Recognised-but-refused formats, so the message can say what the file is (first bytes -> name).
_KNOWN_OTHERS = [
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "Photoshop PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"icns", "ICNS"),
    (b"PK\x03\x04", "a ZIP archive"),
]


class ImageRejectedError(DomainError):
    """The bytes are not an image this service accepts; the message says why in one line."""

    code = "image_rejected"


@dataclass(frozen=True)
class DecodedImage:
    """An upright 8-bit RGB picture. ``width``/``height`` are those of the original (after EXIF rotation), even when
    ``image`` was decoded at a reduced size (``max_side``)."""

    image: PILImage.Image
    format: str
    width: int
    height: int


def _register_heif() -> bool:
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except Exception:  # a broken optional codec must not take the allowlisted formats down with it
        return False
    return True


_HEIF_AVAILABLE = _register_heif()


def _openers() -> list[str]:
    """The allowlisted formats Pillow has an opener for (MPO is produced by the JPEG opener, not one of its own)."""
    PILImage.init()
    return [name for name in BY_PIL_NAME if name in PILImage.OPEN]


def max_image_pixels() -> int:
    return int(settings.SEMSEARCH_MAX_IMAGE_PIXELS)


def _refused_format_name(data: bytes) -> str | None:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head or (head.startswith(b"<?xml") and b"<svg" in data[:8192].lower()):
        return "SVG"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "HTML"
    for magic, name in _KNOWN_OTHERS:
        if data.startswith(magic):
            return name
    return None


def _open(data: bytes) -> PILImage.Image:
    if not data:
        raise ImageRejectedError("The file is empty.")
    refused = _refused_format_name(data)
    if refused:
        raise ImageRejectedError(f"{refused} is not an allowed format; allowed: {FORMAT_NAMES_TEXT}.")
    limit = max_image_pixels()
    # Pillow's own bomb guard raises at twice this value; keep it at or above ours so ours decides.
    if PILImage.MAX_IMAGE_PIXELS is not None and limit > PILImage.MAX_IMAGE_PIXELS:
        PILImage.MAX_IMAGE_PIXELS = limit
    try:
        return PILImage.open(io.BytesIO(data), formats=_openers())
    except PILImage.DecompressionBombError as exc:
        raise ImageRejectedError(
            f"The image declares too many pixels, over the limit of {max_image_pixels():,} (a decompression bomb?)."
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageRejectedError(
            f"The file is not a readable image in an allowed format; allowed: {FORMAT_NAMES_TEXT}."
        ) from exc


def _to_rgb(image: PILImage.Image) -> PILImage.Image:
    """8-bit RGB whatever the mode; transparency is composited on white, 16/32-bit and float scaled down."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode != "F" else max(float(values.max()), 1.0)
        if mode == "I" and values.max() <= 255:
            top = 255.0
        scaled = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return PILImage.fromarray(scaled, mode="L").convert("RGB")
    with_alpha = ("RGBA", "LA", "La", "RGBa", "PA")
    has_alpha = mode in with_alpha or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def reduced_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(width, height) of ``size`` scaled so its longer side is ``max_side`` (rounded up); ``size`` itself when it
    is no larger. A reduced JPEG decode covers at least this."""
    width, height = size
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _jpeg_reduced(image: PILImage.Image, data: bytes, max_side: int) -> PILImage.Image | None:
    """A plain (YCbCr or grey) JPEG decoded by libjpeg-turbo at the smallest of its n/8 scales that covers
    ``reduced_size``, as RGB in stored orientation; None when Pillow must decode it (another colour space, or
    libjpeg-turbo reports any problem with the data: Pillow then decodes it or gives the reason to reject it).

    Pillow's reduced decode knows only 1/2, 1/4 and 1/8: a 1024×768 photo came out at 512×384 and then cost a
    resize to the 384 px thumbnail as dear as the decode; at 3/8 it is the thumbnail (``bench/decode_once.py``,
    option ``thumbnail_turbo``).
    """
    if image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return None
    width, height = reduced_size(image.size, max_side)
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=width, min_height=height, strict=True)
    except ValueError:
        return None
    picture = PILImage.fromarray(pixels, "RGB")
    picture.info.update({key: image.info[key] for key in ("exif", "xmp") if key in image.info})  # orientation
    return picture


def decode_image(data: bytes, *, max_side: int | None = None) -> DecodedImage:
    """Decode ``data`` into an upright RGB picture, or raise ``ImageRejectedError`` with a one-line reason.

    Checks the declared size against ``SEMSEARCH_MAX_IMAGE_PIXELS`` before decoding any pixel data; decodes only the
    first frame of animations. ``max_side`` lets JPEG decode at a reduced scale (at least that many pixels on the
    longer side) when the caller only needs a thumbnail. No side effects; safe to call from any thread.
    """
    image = _open(data)
    allowed = BY_PIL_NAME.get(image.format or "")
    if allowed is None:
        raise ImageRejectedError(f"{image.format} is not an allowed format; allowed: {FORMAT_NAMES_TEXT}.")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejectedError("The image declares an empty size.")
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageRejectedError(
            f"The image declares {width}×{height} = {width * height:,} pixels, over the limit of {limit:,}."
        )
    try:
        picture = _jpeg_reduced(image, data, max_side) if max_side else None
        if picture is None:
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            if max_side and image.format in ("JPEG", "MPO"):
                image.draft("RGB", reduced_size(image.size, max_side))
            image.load()
            picture = image
        orientation = image.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(picture) if orientation != 1 else picture
        rgb = _to_rgb(upright)
        rgb.load()
    except PILImage.DecompressionBombError as exc:
        raise ImageRejectedError(
            f"The image declares too many pixels, over the limit of {max_image_pixels():,} (a decompression bomb?)."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError) as exc:
        raise ImageRejectedError(f"The {allowed.name} file is truncated or corrupt ({exc}).") from exc
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return DecodedImage(image=rgb, format=allowed.name, width=width, height=height)


def heif_available() -> bool:
    """Whether HEIC files can be decoded in this process (pillow-heif imported and registered)."""
    return _HEIF_AVAILABLE

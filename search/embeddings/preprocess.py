"""Fast image preprocessing in numpy that reproduces a Hugging Face image processor.

For CLIP-style processors (resize the shortest side, centre-crop) and SigLIP-style ones (plain resize to a fixed
height and width) the pixels are computed as the model's own processor would, with two shortcuts that keep cosine
>= 0.999 to it: JPEGs are decoded at a reduced size (libjpeg DCT scaling via ``Image.draft``) when the result is still
at least the resize target, and the per-channel rescale + normalise is a 256-entry lookup table. Target sizes are
computed from the image's full size with the processor's arithmetic (``int()`` truncation of the long side).

Pure functions; nothing here imports torch.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ImageInput = Image.Image | bytes | bytearray | memoryview | str | Path
# (RGB picture, (width, height), Pillow filter) -> the resized picture
Resize = Callable[[Image.Image, tuple[int, int], Image.Resampling], Image.Image]

_ORIENTATION_TAG = 274
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


@dataclass(frozen=True)
class ImageSpec:
    """What a model's image processor does, reduced to the parameters the fast path needs."""

    shortest_edge: int | None  # CLIP: resize so the short side is this long (aspect kept)
    height: int | None  # SigLIP: resize to exactly height x width
    width: int | None
    crop_height: int | None  # None: no centre crop
    crop_width: int | None
    resample: Image.Resampling
    lut: np.ndarray  # (3, 256) float32: uint8 value -> rescaled, normalised value per channel

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the tensor the model receives."""
        if self.crop_height and self.crop_width:
            return self.crop_height, self.crop_width
        if self.height and self.width:
            return self.height, self.width
        raise ValueError("a shortest-edge resize without a centre crop gives images of varying size")

    def resize_target(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the processor's resize of a ``width`` x ``height`` image."""
        if self.height and self.width:
            return self.width, self.height
        size = self.shortest_edge or 0
        if (height <= width and height == size) or (width <= height and width == size):
            return width, height
        if width <= height:
            return size, int(size * height / width)
        return int(size * width / height), size


def spec_from_processor(processor: Any) -> ImageSpec | None:
    """An ``ImageSpec`` for a Hugging Face image processor, or None when it does something the fast path does not
    reproduce (padding, longest-edge limits, no resize...), in which case callers use the processor itself."""
    if not getattr(processor, "do_resize", False) or getattr(processor, "do_pad", False):
        return None
    if getattr(processor, "do_convert_rgb", True) is False:
        return None
    size = getattr(processor, "size", None)
    shortest, height, width = _field(size, "shortest_edge"), _field(size, "height"), _field(size, "width")
    if _field(size, "longest_edge") or _field(size, "max_height") or not (shortest or (height and width)):
        return None
    crop_height = crop_width = None
    if getattr(processor, "do_center_crop", False):
        crop = getattr(processor, "crop_size", None)
        crop_height, crop_width = _field(crop, "height"), _field(crop, "width")
        if not (crop_height and crop_width):
            return None
    elif shortest:
        return None
    scale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
    values = np.arange(256, dtype=np.float64)[None, :] * scale
    if getattr(processor, "do_normalize", True):
        mean = np.asarray(processor.image_mean, dtype=np.float64).reshape(-1, 1)
        std = np.asarray(processor.image_std, dtype=np.float64).reshape(-1, 1)
        values = (values - mean) / std
    lut = np.ascontiguousarray(np.broadcast_to(values, (3, 256)), dtype=np.float32)
    resample = getattr(processor, "resample", None)
    return ImageSpec(
        shortest_edge=shortest,
        height=None if shortest else height,
        width=None if shortest else width,
        crop_height=crop_height,
        crop_width=crop_width,
        resample=Image.Resampling(int(resample if resample is not None else Image.Resampling.BILINEAR)),
        lut=lut,
    )


def open_image(item: ImageInput) -> Image.Image:
    """A PIL image (not yet decoded) from bytes, a path or an image; raises OSError/ValueError when unreadable."""
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(item)))
    if isinstance(item, (str, Path)):
        return Image.open(item)
    raise TypeError(f"cannot read an image from {type(item).__name__}")


def load_rgb(item: ImageInput, spec: ImageSpec, resize: Resize | None = None) -> Image.Image:
    """Decode ``item`` (reduced-size JPEG decoding where it cannot change the result's size), apply its EXIF
    orientation, and convert to RGB compositing any transparency onto white, as Hugging Face processors do.
    Resizes to the processor's target size (with Pillow, the processors' own resize, unless ``resize`` is given),
    then centre-crops."""
    resize = resize or _resize
    image = open_image(item)
    full_width, full_height = image.size
    orientation = image.getexif().get(_ORIENTATION_TAG, 1) if hasattr(image, "getexif") else 1
    logical = (full_height, full_width) if orientation in _SWAPPING_ORIENTATIONS else (full_width, full_height)
    target_w, target_h = spec.resize_target(*logical)
    if image.format == "JPEG" and isinstance(item, (bytes, bytearray, memoryview, str, Path)):
        stored_target = (target_h, target_w) if orientation in _SWAPPING_ORIENTATIONS else (target_w, target_h)
        if full_width >= 2 * stored_target[0] and full_height >= 2 * stored_target[1]:
            image.draft(image.mode, stored_target)
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode == "L" and image.info.get("transparency") is None:
        # Resizing one channel and then copying it three times equals resizing the RGB copy.
        image = _resize(image, (target_w, target_h), spec.resample).convert("RGB")
    else:
        image = resize(_to_rgb(image), (target_w, target_h), spec.resample)
    if spec.crop_height and spec.crop_width:
        top = (target_h - spec.crop_height) // 2
        left = (target_w - spec.crop_width) // 2
        if (top, left) != (0, 0) or image.size != (spec.crop_width, spec.crop_height):
            image = image.crop((left, top, left + spec.crop_width, top + spec.crop_height))
    return image


def pixels_into(out: np.ndarray, image: Image.Image, spec: ImageSpec) -> None:
    """Write the normalised (3, H, W) float32 pixels of an RGB ``image`` of the output size into ``out``."""
    array = np.asarray(image, dtype=np.uint8)
    for channel in range(3):
        np.take(spec.lut[channel], array[:, :, channel], out=out[channel])


def preprocess(items: list[ImageInput], spec: ImageSpec) -> np.ndarray:
    """(n, 3, H, W) float32 model input for ``items``; raises on the first unreadable item."""
    height, width = spec.output_size
    out = np.empty((len(items), 3, height, width), dtype=np.float32)
    for i, item in enumerate(items):
        pixels_into(out[i], load_rgb(item, spec), spec)
    return out


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    if image.size == size:
        return image
    return image.resize(size, resample=resample)


def _to_rgb(image: Image.Image) -> Image.Image:
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _field(value: Any, name: str) -> int | None:
    if value is None:
        return None
    found = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return int(found) if found else None

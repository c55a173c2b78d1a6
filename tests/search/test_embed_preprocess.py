"""The fast image path reproduces the models' own Hugging Face image processors."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessor, SiglipImageProcessor

from search.embeddings.preprocess import preprocess, spec_from_processor
from search.embeddings.toy_data import photo_like_picture

PROCESSORS = {
    "clip": lambda: CLIPImageProcessor(),  # openai/clip-vit-base-patch32's settings are the defaults
    "siglip": lambda: SiglipImageProcessor(),
}


def _as(picture: Image.Image, mode: str) -> Image.Image:
    if mode == "P":
        return picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    if mode == "RGBA":
        rgba = picture.convert("RGBA")
        alpha = np.tile(np.linspace(0, 255, rgba.width, dtype=np.uint8), (rgba.height, 1))
        rgba.putalpha(Image.fromarray(alpha, "L"))
        return rgba
    return picture.convert(mode)


@functools.cache
def _file(width: int, height: int, mode: str, fmt: str) -> bytes:
    return _encoded(_as(photo_like_picture(width, height, seed=width * 7 + height), mode), fmt)


def _encoded(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


CASES = [
    # (width, height, mode, format)
    (1024, 768, "RGB", "JPEG"),
    (4000, 3000, "RGB", "JPEG"),
    (1536, 2048, "RGB", "JPEG"),
    (640, 480, "L", "JPEG"),
    (1200, 900, "CMYK", "JPEG"),
    (225, 224, "RGB", "JPEG"),
    (224, 224, "RGB", "PNG"),
    (800, 600, "RGBA", "PNG"),
    (500, 375, "P", "PNG"),
    (300, 200, "L", "PNG"),
    (1, 1, "RGB", "PNG"),
    (37, 19, "RGB", "PNG"),
    (3000, 100, "RGB", "JPEG"),
    (120, 2400, "RGB", "PNG"),
]


@pytest.mark.parametrize("processor_name", sorted(PROCESSORS))
@pytest.mark.parametrize(("width", "height", "mode", "fmt"), CASES)
def test_fast_preprocessing_matches_the_model_processor(
    processor_name: str, width: int, height: int, mode: str, fmt: str
) -> None:
    # Given a photo-like image of some size and mode, stored as a file would be
    processor = PROCESSORS[processor_name]()
    data = _file(width, height, mode, fmt)
    spec = spec_from_processor(processor)
    assert spec is not None
    # When both the processor and the fast path prepare it
    reference = processor(images=[Image.open(io.BytesIO(data))], return_tensors="np")["pixel_values"][0]
    ours = preprocess([data], spec)[0]
    # Then the tensors have the same shape and point the same way (cosine >= 0.999)
    assert ours.shape == reference.shape
    a, b = ours.ravel().astype(np.float64), reference.ravel().astype(np.float64)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert cosine >= 0.999, f"cosine {cosine:.5f}"


def test_small_images_are_reproduced_exactly() -> None:
    # Given an image that needs no reduced-size decoding (a PNG a little larger than the crop)
    processor = CLIPImageProcessor()
    data = _encoded(photo_like_picture(300, 260, seed=3), "PNG")
    reference = processor(images=[Image.open(io.BytesIO(data))], return_tensors="np")["pixel_values"][0]
    # When the fast path prepares it
    ours = preprocess([data], spec_from_processor(processor))[0]
    # Then the result is the processor's to float rounding: same resize arithmetic, same crop offsets
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_exif_orientation_is_applied() -> None:
    # Given a landscape JPEG whose EXIF says "rotate 90 degrees" (orientation 6)
    picture = photo_like_picture(800, 400, seed=5)
    exif = Image.Exif()
    exif[274] = 6
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    upright = picture.transpose(Image.Transpose.ROTATE_270)
    processor = CLIPImageProcessor()
    spec = spec_from_processor(processor)
    # When it is prepared
    ours = preprocess([buffer.getvalue()], spec)[0]
    reference = processor(images=[upright], return_tensors="np")["pixel_values"][0]
    # Then it matches the upright picture, as people see it
    a, b = ours.ravel(), reference.ravel()
    assert float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) >= 0.995

"""The worker's resize of a model's input (torch's antialiased bicubic on 8-bit pixels) stays within one level of
Pillow's, the filter the Hugging Face processors use; anything it does not cover is Pillow's own result."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessor

from search.embeddings.preprocess import load_rgb, pixels_into, spec_from_processor
from search.embeddings.resampling import bicubic_resize
from search.embeddings.toy_data import photo_like_picture

BICUBIC = Image.Resampling.BICUBIC


REDUCTIONS = [((384, 288), (298, 224)), ((288, 384), (224, 298)), ((500, 375), (298, 224)),
              ((1024, 768), (298, 224)), ((384, 216), (300, 169)), ((97, 61), (31, 20))]  # fmt: skip
OTHERS = [("RGB", (500, 400), BICUBIC), ("L", (150, 100), BICUBIC), ("RGB", (150, 100), Image.Resampling.LANCZOS),
          ("RGBA", (150, 100), BICUBIC)]  # fmt: skip


@pytest.mark.parametrize(("source", "target"), REDUCTIONS)
def test_reductions_are_pillow_s_within_one_level(source, target):
    picture = photo_like_picture(*source, seed=source[0] + source[1])
    ours = np.asarray(bicubic_resize(picture, target, BICUBIC), dtype=np.int16)
    pillow = np.asarray(picture.resize(target, resample=BICUBIC), dtype=np.int16)
    assert ours.shape == pillow.shape == (target[1], target[0], 3)
    difference = np.abs(ours - pillow)
    assert difference.max() <= 1
    assert difference.mean() < 0.05


@pytest.mark.parametrize(("mode", "target", "resample"), OTHERS)
def test_enlargements_other_modes_and_filters_are_pillow_s_own(mode, target, resample):
    picture = photo_like_picture(300, 200, seed=4).convert(mode)
    ours = bicubic_resize(picture, target, resample)
    assert ours.mode == mode
    assert np.array_equal(np.asarray(ours), np.asarray(picture.resize(target, resample=resample)))


def test_a_thumbnail_prepared_for_vit_b32_points_the_same_way_as_with_pillow():
    spec = spec_from_processor(CLIPImageProcessor())
    buffer = io.BytesIO()
    photo_like_picture(384, 288, seed=9).save(buffer, "JPEG", quality=85)
    with_torch, with_pillow = (np.empty((3, 224, 224), np.float32) for _ in range(2))
    pixels_into(with_torch, load_rgb(buffer.getvalue(), spec, resize=bicubic_resize), spec)
    pixels_into(with_pillow, load_rgb(buffer.getvalue(), spec), spec)
    a, b = with_torch.ravel().astype(np.float64), with_pillow.ravel().astype(np.float64)
    assert float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) > 0.99999

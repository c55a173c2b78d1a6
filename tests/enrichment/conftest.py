"""Fixtures for enrichment: stored pictures with rendered words or toy shapes, and a fresh OCR engine per test."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from images.models import Image, ImageStatus
from images.services.ocr import ocr_engine_reset
from search.embeddings.toy_data import random_captioned_pictures
from search.index import reader_reset
from search.state import active_model_key_forget


@pytest.fixture(autouse=True)
def _fresh_engines(settings, tmp_path) -> Iterator[None]:
    """The toy model, a private index folder, and an OCR engine built from this test's settings."""
    settings.SEMSEARCH_MODEL_ID = "toy"
    settings.SEMSEARCH_MODEL_REVISION = ""
    settings.INDEX_ROOT = tmp_path / "index"
    active_model_key_forget()
    reader_reset()
    ocr_engine_reset()
    yield
    ocr_engine_reset()
    active_model_key_forget()
    reader_reset()


def picture_store(picture: PILImage.Image, *, status: str = ImageStatus.READY, title: str = "") -> Image:
    """An Image row with ``picture`` stored as its PNG original."""
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    name = default_storage.save(f"originals/{digest}.png", ContentFile(data))
    return Image.objects.create(content_hash=digest, original=name, width=picture.width, height=picture.height,
                                format="PNG", title=title, status=status)  # fmt: skip


def toy_pictures_store(n: int, *, seed: int, status: str = ImageStatus.PENDING) -> list[tuple[Image, object]]:
    """``n`` toy shape pictures stored as images, with the attributes each shows."""
    return [(picture_store(picture, status=status, title=caption), attributes)
            for picture, caption, attributes in random_captioned_pictures(n, seed=seed, size=128)]  # fmt: skip

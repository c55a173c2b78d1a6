"""Decode once on the way in: the worker feeds the model from the stored thumbnail when it holds the pixels the
model's resize keeps (vectors within cosine 0.999 of the original's), and from the original when it does not."""

from __future__ import annotations

import io

import numpy as np
import pytest

from images.services import image_ingest
from search.embeddings import get_encoder
from search.embeddings.toy_data import photo_like_picture
from search.models import Embedding
from search.services.embedding import embedding_compute
from search.state import active_model_key
from tests.workers.test_embed_tasks import _toy_model  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db


def jpeg(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    photo_like_picture(width, height, seed=seed).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def stored_vector(image_id: int) -> np.ndarray:
    row = Embedding.objects.get(image_id=image_id, model_key=active_model_key())
    return np.frombuffer(bytes(row.vector), dtype="<f4")


def test_a_photo_is_embedded_from_its_thumbnail_and_stays_within_cosine_0999_of_the_original(settings):
    # Given an uploaded 1024×768 photo (its 384 px thumbnail is larger than the model's input)
    image = image_ingest(data=jpeg(1024, 768, seed=31), enqueue=False).image
    # When it is embedded
    assert embedding_compute(image_ids=[image.pk])["embedded"] == 1
    # Then the vector is the thumbnail's, and within cosine 0.999 of encoding the original
    encoder = get_encoder("toy")
    # (one picture per call: int8 precision quantises each batch's activations together)
    (from_thumbnail,) = encoder.encode_images([image.thumbnail.path])
    (from_original,) = encoder.encode_images([image.original.path])
    vector = stored_vector(image.pk)
    np.testing.assert_allclose(vector, from_thumbnail, atol=1e-5)
    assert float(vector @ from_original) >= 0.999


def test_a_panorama_whose_thumbnail_is_too_small_is_embedded_from_the_original(settings):
    # Given a 3000×200 panorama: its thumbnail (384×26) is shorter than the model's input
    image = image_ingest(data=jpeg(3000, 200, seed=32), enqueue=False).image
    assert embedding_compute(image_ids=[image.pk])["embedded"] == 1
    (from_original,) = get_encoder("toy").encode_images([image.original.path])
    np.testing.assert_allclose(stored_vector(image.pk), from_original, atol=1e-5)


def test_the_setting_turns_the_thumbnail_source_off(settings):
    settings.SEMSEARCH_EMBED_FROM_THUMBNAIL = False
    image = image_ingest(data=jpeg(1024, 768, seed=33), enqueue=False).image
    assert embedding_compute(image_ids=[image.pk])["embedded"] == 1
    (from_original,) = get_encoder("toy").encode_images([image.original.path])
    np.testing.assert_allclose(stored_vector(image.pk), from_original, atol=1e-5)

"""Database constraints on the catalogue and the vectors hold at the database level, not only in Python."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from images.models import Image
from search.models import Embedding, SearchModel


def make_image(content: bytes = b"a", **fields) -> Image:
    return Image.objects.create(
        content_hash=hashlib.sha256(content).hexdigest(),
        original=f"originals/{content.hex()}.png",
        width=10,
        height=10,
        format="PNG",
        **fields,
    )


@pytest.mark.django_db
def test_duplicate_content_hash_is_rejected():
    make_image(b"same")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_image(b"same")
    assert Image.objects.count() == 1


@pytest.mark.django_db
def test_unknown_status_is_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        make_image(b"x", status="deleted")


@pytest.mark.django_db
def test_malformed_hash_is_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        Image.objects.create(content_hash="not-a-hash", original="o.png", width=1, height=1, format="PNG")


@pytest.mark.django_db
def test_vector_length_must_match_dimension():
    image = make_image(b"v")
    good = np.ones(8, dtype="<f4").tobytes()
    Embedding.objects.create(image=image, model_key="m", dimension=8, vector=good)
    with pytest.raises(IntegrityError), transaction.atomic():
        Embedding.objects.create(image=image, model_key="other", dimension=9, vector=good)
    assert Embedding.objects.count() == 1


@pytest.mark.django_db
def test_one_embedding_per_image_and_model():
    image = make_image(b"u")
    vector = np.ones(4, dtype="<f4").tobytes()
    Embedding.objects.create(image=image, model_key="m", dimension=4, vector=vector)
    with pytest.raises(IntegrityError), transaction.atomic():
        Embedding.objects.create(image=image, model_key="m", dimension=4, vector=vector)


@pytest.mark.django_db
def test_only_one_model_is_active():
    SearchModel.objects.create(model_key="a", model_id="a", state="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        SearchModel.objects.create(model_key="b", model_id="b", state="active")
    SearchModel.objects.create(model_key="c", model_id="c", state="building")
    assert SearchModel.objects.count() == 2

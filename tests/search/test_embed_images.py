"""Image encoding: vectors, the pipelined batch iterator and its error handling."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from search.embeddings import Encoder, ImageDecodeError
from search.embeddings.toy_data import random_captioned_pictures


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pictures() -> list[Image.Image]:
    return [picture for picture, _, _ in random_captioned_pictures(7, seed=41, size=160)]


def test_images_become_unit_vectors_whatever_their_form(toy_encoder: Encoder, pictures, tmp_path) -> None:
    # Given the same picture as a PIL image, JPEG bytes and a PNG file path
    path = tmp_path / "picture.png"
    pictures[0].save(path)
    # When all three are encoded
    vectors = toy_encoder.encode_images([pictures[0], _jpeg(pictures[0]), path])
    # Then they are float32 unit vectors pointing (almost) the same way
    assert vectors.shape == (3, toy_encoder.dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[2]) > 0.9999
    assert float(vectors[0] @ vectors[1]) > 0.98


def test_batch_pipeline_keeps_going_past_undecodable_items(toy_encoder: Encoder, pictures) -> None:
    # Given a stream with a corrupt file, an empty one and a truncated JPEG among good pictures
    good = [_jpeg(p) for p in pictures]
    items = [(10, good[0]), (11, b"not an image"), (12, good[1]), (13, b""), (14, good[2][:200]), (15, good[3])]
    items += [(20 + i, data) for i, data in enumerate(good[4:])]
    # When it is encoded in batches of 3
    batches = list(toy_encoder.encode_image_batches(iter(items), batch_size=3))
    # Then every good item is encoded exactly once, in order, and the bad ones are reported with a reason
    ids = [i for batch_ids, _, _ in batches for i in batch_ids]
    errors = dict(e for _, _, batch_errors in batches for e in batch_errors)
    assert ids == [10, 12, 15, 20, 21, 22]
    assert set(errors) == {11, 13, 14}
    assert all(message for message in errors.values())
    vectors = np.concatenate([v for _, v, _ in batches])
    expected = toy_encoder.encode_images([good[0], good[1], good[3], *good[4:]])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_an_all_bad_batch_yields_no_vectors_but_its_errors(toy_encoder: Encoder) -> None:
    batches = list(toy_encoder.encode_image_batches([(1, b"x"), (2, b"y")], batch_size=8))
    assert [(ids, vectors.shape, [i for i, _ in errors]) for ids, vectors, errors in batches] == [
        ([], (0, toy_encoder.dimension), [1, 2])
    ]


def test_closing_the_pipeline_early_stops_its_decoding_thread(toy_encoder: Encoder, pictures) -> None:
    # Given a long stream of which the caller only wants the first batch
    data = _jpeg(pictures[0])
    stream = ((i, data) for i in range(10_000))
    batches = toy_encoder.encode_image_batches(stream, batch_size=4)
    first_ids, _, _ = next(batches)
    # When the generator is closed
    batches.close()
    # Then the background decoder has stopped
    assert first_ids == [0, 1, 2, 3]
    assert not [t for t in threading.enumerate() if t.name.startswith("embed-decode")]


def test_encode_images_names_the_unreadable_item(toy_encoder: Encoder, pictures) -> None:
    with pytest.raises(ImageDecodeError, match="#1"):
        toy_encoder.encode_images([pictures[0], b"garbage"])

"""Text encoding: real tokens only, identical to the padded computation, truncation reported."""

from __future__ import annotations

import numpy as np
import torch

from search.embeddings import Encoder

QUERIES = [
    "a red circle",
    "three blue squares on the left on a white background",
    "A photo of 4 purple triangles in the middle, white background",
    "stars",
    "two yellow crosses near the bottom, black background",
]


def _padded_reference(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """What a naive caller computes: every text padded to the model's maximum length in one batch."""
    tokens = encoder.tokenizer(
        texts, padding="max_length", truncation=True, max_length=encoder.max_text_tokens, return_tensors="pt"
    )
    with torch.inference_mode():
        features = encoder.model.get_text_features(**tokens).pooler_output
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def test_unpadded_text_vectors_equal_the_padded_computation(toy_encoder: Encoder) -> None:
    # Given queries of different lengths
    # When they are encoded with real tokens only (sorted into length buckets) and the naive padded way
    ours = toy_encoder.encode_texts(QUERIES)
    reference = _padded_reference(toy_encoder, QUERIES)
    # Then the vectors agree within 1e-5, in the caller's order
    assert ours.shape == (len(QUERIES), toy_encoder.dimension)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_text_vectors_are_unit_length_and_batch_independent(toy_encoder: Encoder) -> None:
    # Given a batch and the same texts one at a time
    batch = toy_encoder.encode_texts(QUERIES)
    single = np.concatenate([toy_encoder.encode_texts([q]) for q in QUERIES])
    # Then each vector is L2-normalised and does not depend on its batch companions
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_over_long_text_is_truncated_and_flagged(toy_encoder: Encoder) -> None:
    # Given a text far beyond the model's token limit, and its head that fits
    head = "two red circles on the left"
    long_text = head + " and" + " many more words" * 40
    # When encoded with details
    vectors, truncated = toy_encoder.encode_texts_detailed([head, long_text])
    # Then only the long text is flagged, its vector is finite and unit-length, and it equals the padded
    # computation of the tokenizer's own truncation
    assert truncated == [False, True]
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[1], _padded_reference(toy_encoder, [long_text])[0], atol=1e-5)
    assert len(toy_encoder.tokenizer(long_text)["input_ids"]) > toy_encoder.max_text_tokens


def test_empty_text_list_gives_an_empty_matrix(toy_encoder: Encoder) -> None:
    vectors, truncated = toy_encoder.encode_texts_detailed([])
    assert vectors.shape == (0, toy_encoder.dimension)
    assert truncated == []

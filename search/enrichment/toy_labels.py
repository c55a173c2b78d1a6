"""Labelled toy pictures scored against the toy vocabulary, for calibration and for the benchmark."""

from __future__ import annotations

import numpy as np

from search.embeddings import TOY_MODEL_ID, Encoder
from search.embeddings.toy_data import ShapeAttributes, random_captioned_pictures
from search.enrichment.tagging import tag_scores, text_vectors_compute
from search.enrichment.vocabulary import VOCABULARY_DIR, Vocabulary, vocabulary_load


def toy_tags_true(attributes: ShapeAttributes) -> set[str]:
    """The toy vocabulary's tags that describe a picture with these attributes."""
    return {attributes.kind, attributes.colour, f"{attributes.background} background"}


def toy_scored(*, pictures: int, seed: int) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    """``(vocabulary, scores, labels)`` for ``pictures`` toy pictures drawn with ``seed`` (images × tags)."""
    encoder = Encoder.load(TOY_MODEL_ID, device="cpu", precision="fp32", batch_size=64)
    vocabulary = vocabulary_load(path=VOCABULARY_DIR / "toy.txt")
    drawn = random_captioned_pictures(pictures, seed)
    vectors = encoder.encode_images([picture for picture, _, _ in drawn])
    scores = tag_scores(vocabulary=vocabulary, text_vectors=text_vectors_compute(vocabulary=vocabulary,
                        encoder=encoder), image_vectors=vectors)  # fmt: skip
    labels = np.array([[tag in toy_tags_true(attributes) for tag in vocabulary.tags] for _, _, attributes in drawn])
    return vocabulary, scores, labels

"""Zero-shot automatic tags: one matrix product of image vectors against a vocabulary's text vectors.

A tag's text vector is the normalised mean of its prompts (computed once per model and vocabulary, cached in the
process and on disk under ``INDEX_ROOT/autotags``). Its score is the cosine similarity, or, in an exclusive group,
the softmax probability among the group's tags. A tag is proposed when its score clears its threshold
(``Vocabulary.tag_thresholds``), at most ``SEMSEARCH_AUTOTAG_MAX_PER_IMAGE`` per image, best first.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from core.metrics import AUTOTAGS_PROPOSED
from images.models import AutoTag, AutoTagState, Image
from search.embeddings import Encoder, get_encoder
from search.enrichment.vocabulary import Vocabulary, vocabulary_load, vocabulary_path
from search.state import model_source

LOGIT_SCALE = 100.0  # CLIP's (clamped) temperature: turns cosines into the sharp probabilities it was trained on


@lru_cache(maxsize=8)
def _tagger(model_key: str) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    model_id, revision = model_source(model_key=model_key)
    vocabulary = vocabulary_load(path=vocabulary_path(model_id=model_id))
    digest = hashlib.sha256(f"{model_key}\n{vocabulary_path(model_id=model_id).read_text()}".encode()).hexdigest()
    cached = Path(settings.INDEX_ROOT) / "autotags" / f"{vocabulary.name}-{digest[:24]}.npy"
    if cached.is_file():
        matrix = np.load(cached)
    else:
        matrix = text_vectors_compute(vocabulary=vocabulary, encoder=get_encoder(model_id, revision or None))
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, matrix)
        os.replace(partial, cached)
    thresholds = np.asarray(vocabulary.tag_thresholds(model_id=model_id), dtype=np.float32)
    return vocabulary, matrix, thresholds


def text_vectors_compute(*, vocabulary: Vocabulary, encoder: Encoder) -> np.ndarray:
    """One L2-normalised text vector per tag (rows in ``vocabulary.tags`` order): the mean over its prompts.

    Every prompt goes to the encoder in one call (batched there): for the 847 prompts of ``everyday`` on ViT-B/32
    that took 7 s where one call per tag took 106 s, on a fresh system's first tagging task."""
    prompts: list[str] = []
    spans: list[tuple[int, int]] = []
    for group in vocabulary.groups:
        for _, phrase in group.tags:
            texts = vocabulary.prompts(group, phrase)
            spans.append((len(prompts), len(prompts) + len(texts)))
            prompts += texts
    vectors = encoder.encode_texts(prompts)
    means = np.stack([vectors[start:end].mean(axis=0) for start, end in spans])
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


def tag_scores(*, vocabulary: Vocabulary, text_vectors: np.ndarray, image_vectors: np.ndarray) -> np.ndarray:
    """Scores of every tag (columns, in ``vocabulary.tags`` order) for every image vector (rows). Pure."""
    scores = np.asarray(image_vectors, dtype=np.float32) @ text_vectors.T
    start = 0
    for group in vocabulary.groups:
        end = start + len(group.tags)
        if group.exclusive:
            logits = LOGIT_SCALE * scores[:, start:end]
            logits = np.exp(logits - logits.max(axis=1, keepdims=True))
            scores[:, start:end] = logits / logits.sum(axis=1, keepdims=True)
        start = end
    return scores


def tags_select(*, scores: np.ndarray, thresholds: np.ndarray, names: Sequence[str]) -> list[list[tuple[str, float]]]:
    """For each row of ``scores``, the ``(tag, score)`` pairs that clear their thresholds, ranked by how far each is
    past its own threshold (so cosine and probability groups compare fairly), at most
    ``SEMSEARCH_AUTOTAG_MAX_PER_IMAGE``. Pure."""
    chosen = []
    for row in scores:
        hits = np.flatnonzero(row >= thresholds)
        hits = hits[np.argsort(-(row[hits] - thresholds[hits]))][: settings.SEMSEARCH_AUTOTAG_MAX_PER_IMAGE]
        chosen.append([(names[int(i)], float(row[i])) for i in hits])
    return chosen


def tags_choose(*, model_key: str, vectors: np.ndarray) -> list[list[tuple[str, float]]]:
    """``tags_select`` for these image vectors with the model's vocabulary. Loads the text vectors on first use
    (the model's text tower; cached afterwards)."""
    vocabulary, text_vectors, thresholds = _tagger(model_key)
    scores = tag_scores(vocabulary=vocabulary, text_vectors=text_vectors, image_vectors=vectors)
    return tags_select(scores=scores, thresholds=thresholds, names=vocabulary.tags)


def autotags_store(*, model_key: str, image_ids: Sequence[int], vectors: np.ndarray) -> int:
    """Propose tags for these images from their ``vectors`` (rows in ``image_ids`` order) and store them.

    Idempotent. Replaces each image's earlier *proposed* tags; a tag a person accepted stays accepted (its
    confidence and model refreshed when proposed again), a rejected one stays rejected and is never proposed again.
    Deleted images are skipped. Returns how many tags this run proposed (new proposals plus accepted ones refreshed).
    """
    chosen = dict(zip((int(i) for i in image_ids), tags_choose(model_key=model_key, vectors=vectors), strict=True))
    return autotags_save(model_key=model_key, chosen=chosen)


def autotags_save(*, model_key: str, chosen: Mapping[int, list[tuple[str, float]]]) -> int:
    """Store ``chosen`` (image id -> ``(tag, score)`` pairs) as described in ``autotags_store``; one transaction."""
    with transaction.atomic():
        alive = set(Image.objects.select_for_update().filter(id__in=list(chosen)).values_list("id", flat=True))
        reviewed = {(row.image_id, row.tag): row for row in
                    AutoTag.objects.filter(image_id__in=alive).exclude(state=AutoTagState.PROPOSED)}  # fmt: skip
        AutoTag.objects.filter(image_id__in=alive, state=AutoTagState.PROPOSED).delete()
        fresh, refreshed = [], []
        for image_id in alive:
            for tag, score in chosen[image_id]:
                row = reviewed.get((image_id, tag))
                if row is None:
                    fresh.append(AutoTag(image_id=image_id, tag=tag, confidence=score, model_key=model_key))
                elif row.state == AutoTagState.ACCEPTED:
                    row.confidence, row.model_key = score, model_key
                    refreshed.append(row)
        AutoTag.objects.bulk_create(fresh)
        AutoTag.objects.bulk_update(refreshed, ["confidence", "model_key"])
    AUTOTAGS_PROPOSED.labels(model_key=model_key).inc(len(fresh))
    return len(fresh) + len(refreshed)

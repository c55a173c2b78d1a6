"""Enrichment after embedding: zero-shot automatic tags from the search model (``tagging``, ``autotags``) and the
hook the embedding pipeline calls (``pipeline``). Text read from the picture (OCR) lives in ``images.services``
because it does not depend on the model. See docs/enrichment.md."""

from search.enrichment.autotags import autotags_compute, autotags_recompute
from search.enrichment.pipeline import enrichment_after_embedding
from search.enrichment.tagging import autotags_store, tag_scores, tags_choose
from search.enrichment.vocabulary import Vocabulary, VocabularyError, vocabulary_load, vocabulary_path

__all__ = [
    "Vocabulary",
    "VocabularyError",
    "autotags_compute",
    "autotags_recompute",
    "autotags_store",
    "enrichment_after_embedding",
    "tag_scores",
    "tags_choose",
    "vocabulary_load",
    "vocabulary_path",
]

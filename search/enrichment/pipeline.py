"""The one hook the embedding pipeline calls after storing a batch: tag inline, queue OCR on its own queue."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from django.conf import settings

from core.dispatch import ENRICH_OCR, task_send_on_commit
from search.enrichment.tagging import autotags_store

logger = logging.getLogger(__name__)


def enrichment_after_embedding(*, model_key: str, image_ids: Sequence[int], vectors: np.ndarray, active: bool) -> None:
    """Enrich a batch just embedded with the active model (``active``); nothing for a model still being built.

    Automatic tags are proposed inline (a matrix product: under 5% of embedding, see bench/enrich.py); OCR is sent
    to the ``enrich`` queue on commit, so reading text never delays an image becoming searchable. A tagging error is
    logged, never raised: the image is already ready. Idempotent.
    """
    if not active or not len(image_ids):
        return
    if settings.SEMSEARCH_AUTOTAGS:
        try:
            autotags_store(model_key=model_key, image_ids=image_ids, vectors=vectors)
        except Exception:  # enrichment is a side branch: the batch's images are stored and ready already
            logger.exception("automatic tagging of %d image(s) failed", len(image_ids))
    if settings.SEMSEARCH_OCR:
        task_send_on_commit(ENRICH_OCR, image_ids=[int(i) for i in image_ids])

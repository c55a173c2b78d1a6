"""Choosing per-tag thresholds from labelled pictures, and measuring tag precision/recall (pure numpy).

Used by ``tools/calibrate_tags.py`` (which writes ``<vocabulary>.thresholds.json``) and ``bench/enrich.py``.
"""

from __future__ import annotations

import numpy as np


def thresholds_for_precision(*, scores: np.ndarray, labels: np.ndarray, precision: float, min_support: int = 5
                             ) -> np.ndarray:  # fmt: skip
    """Per column of ``scores`` (images × tags), the lowest threshold whose precision on these pictures is at least
    ``precision`` with at least ``min_support`` true hits above it; ``inf`` (never proposed) where none is."""
    chosen = np.full(scores.shape[1], np.inf, dtype=np.float32)
    for j in range(scores.shape[1]):
        order = np.argsort(-scores[:, j], kind="stable")
        hits = np.cumsum(labels[order, j])
        ranks = np.arange(1, len(order) + 1)
        good = np.flatnonzero((hits / ranks >= precision) & (hits >= min_support))
        if len(good):
            chosen[j] = scores[order[good.max()], j]
    return chosen


def precision_recall(*, scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """Micro-averaged precision and recall of proposing every tag whose score clears its threshold."""
    proposed = scores >= thresholds[None, :]
    true_positives = int((proposed & labels).sum())
    return true_positives / max(int(proposed.sum()), 1), true_positives / max(int(labels.sum()), 1)

"""Pure ranking steps applied to scored candidates: cut-offs and near-duplicate collapsing.

No database or model access here, so these are cheap to test and to reason about. Every function keeps the input
order (best score first) and is prefix-stable: the fate of a hit depends only on the hits ranked above it, which
is what keeps pagination stable when a later page asks for a longer list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Candidate:
    """A hit before hydration: image id, score, and the ids folded into it as near-duplicates."""

    image_id: int
    score: float
    duplicate_ids: list[int] = field(default_factory=list)


def cutoffs_apply(
    *, candidates: Sequence[Candidate], min_score: float | None, relative_margin: float | None
) -> tuple[list[Candidate], bool]:
    """Keep candidates scoring at least ``min_score`` and within ``relative_margin`` of the best one.

    Returns the kept prefix and whether a cut-off stopped the list (so searching deeper cannot add hits).
    """
    if not candidates:
        return [], False
    floor = -np.inf
    if min_score is not None:
        floor = max(floor, min_score)
    if relative_margin is not None:
        floor = max(floor, candidates[0].score - relative_margin)
    kept: list[Candidate] = []
    for candidate in candidates:
        if candidate.score < floor:
            return kept, True
        kept.append(candidate)
    return kept, False


def duplicates_collapse(
    *, candidates: Sequence[Candidate], vectors: Mapping[int, np.ndarray], threshold: float
) -> list[Candidate]:
    """Fold each candidate whose vector has cosine ≥ ``threshold`` with a better-ranked kept one into that one.

    Greedy in rank order; a candidate without a stored vector always stays. Returns new ``Candidate`` objects
    (the inputs are not changed), each listing the ids folded into it.
    """
    kept: list[Candidate] = []
    kept_vectors: list[np.ndarray] = []
    kept_index: list[int] = []  # position in ``kept`` of each row of ``kept_vectors``
    for candidate in candidates:
        vector = vectors.get(candidate.image_id)
        if vector is not None and kept_vectors:
            similarities = np.stack(kept_vectors) @ vector
            best = int(np.argmax(similarities))
            if similarities[best] >= threshold:
                kept[kept_index[best]].duplicate_ids.append(candidate.image_id)
                continue
        kept.append(Candidate(candidate.image_id, candidate.score, []))
        if vector is not None:
            kept_vectors.append(vector)
            kept_index.append(len(kept) - 1)
    return kept

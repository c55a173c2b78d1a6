"""Cut-offs and near-duplicate collapsing on scored candidates (pure functions)."""

from __future__ import annotations

import numpy as np

from search.services.search_ranking import Candidate, cutoffs_apply, duplicates_collapse
from tests.search.test_search_fixtures import unit


def _candidates(*scores: float) -> list[Candidate]:
    return [Candidate(image_id=i + 1, score=s) for i, s in enumerate(scores)]


def test_min_score_keeps_the_prefix_above_it_and_reports_the_cut() -> None:
    kept, cut = cutoffs_apply(candidates=_candidates(0.9, 0.8, 0.5, 0.4), min_score=0.6, relative_margin=None)
    assert [c.score for c in kept] == [0.9, 0.8]
    assert cut is True


def test_relative_margin_is_measured_from_the_best_score() -> None:
    kept, cut = cutoffs_apply(candidates=_candidates(0.7, 0.66, 0.6, 0.3), min_score=None, relative_margin=0.05)
    assert [c.score for c in kept] == [0.7, 0.66]
    assert cut is True


def test_no_cutoffs_keeps_everything() -> None:
    kept, cut = cutoffs_apply(candidates=_candidates(0.2, 0.1, -0.3), min_score=None, relative_margin=None)
    assert len(kept) == 3
    assert cut is False


def test_near_identical_vectors_collapse_into_the_best_ranked_one_with_a_count() -> None:
    # given hits 1 and 3 nearly identical, 2 different, 4 a copy of 2
    a, b = unit([1, 0, 0]), unit([0, 1, 0])
    vectors = {1: a, 2: b, 3: unit(a + np.float32(0.01) * unit([0, 0, 1])), 4: b.copy()}
    collapsed = duplicates_collapse(candidates=_candidates(0.9, 0.8, 0.7, 0.6), vectors=vectors, threshold=0.97)
    # then two hits remain, each with its folded duplicate
    assert [(c.image_id, c.duplicate_ids) for c in collapsed] == [(1, [3]), (2, [4])]


def test_collapse_keeps_hits_without_vectors_and_below_threshold() -> None:
    vectors = {1: unit([1, 0]), 2: unit([1, 1])}  # cosine 0.707
    collapsed = duplicates_collapse(candidates=_candidates(0.9, 0.8, 0.7), vectors=vectors, threshold=0.97)
    assert [c.image_id for c in collapsed] == [1, 2, 3]
    assert all(c.duplicate_ids == [] for c in collapsed)

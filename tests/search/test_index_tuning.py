"""Build-time tuning of the refine tier: when probing more lists stops helping, more candidates are re-scored."""

from __future__ import annotations

import numpy as np

from search.index import tuning
from search.index.kinds import IndexPlan
from search.index.tuning import Truth, params_tune


def test_a_recall_plateau_over_nprobe_moves_the_tuner_to_more_candidates(monkeypatch):
    # Given a refine-tier index whose recall is held at 0.90 by its candidates until k_factor 64, whatever nprobe
    tried: list[dict] = []

    def recall(*, index, params, truth, labels):
        tried.append(dict(params))
        return min(0.97, 0.90 + 0.01 * (params["k_factor"] >= 64) * params["nprobe"]) if params["k_factor"] >= 64 \
            else min(0.90, 0.80 + 0.05 * params["nprobe"])  # fmt: skip

    monkeypatch.setattr(tuning, "recall_measure", recall)
    plan = IndexPlan("ivfpq", "OPQ64,IVF8192,PQ64x8,Refine(SQ8)", nlist=8192)
    truth = Truth(queries=np.zeros((1, 4), np.float32), query_ids=np.zeros(1, np.int64), neighbours=[], k=10)
    # When it is tuned to recall@10 0.95
    params, measured = params_tune(
        index=None, plan=plan, labels=np.arange(1), truths=(truth, truth), recall_target=0.95
    )
    # Then it reaches the target with 64 candidates per hit, at the fewest lists that do it
    assert params == {"nprobe": 8, "k_factor": 64}
    assert measured >= 0.95
    # And below 64 it stopped probing once recall stopped rising, instead of trying every nprobe up to 8192
    assert max(p["nprobe"] for p in tried if p["k_factor"] < 64) <= 16

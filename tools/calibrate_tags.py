"""Measure per-tag thresholds of the toy vocabulary for the bundled toy model and write them beside it.

    .venv/bin/python tools/calibrate_tags.py            # ~1 min on a 2-core box

Draws labelled toy pictures (seed 11; bench/enrich.py measures on a different seed), scores every tag, and keeps
for each tag the lowest threshold at which its precision on these pictures is at least ``--precision``. Writes
``search/enrichment/vocabularies/toy.thresholds.json`` (``{"toy": {tag: threshold}}``). For a real model the same
``thresholds_for_precision`` applies to any labelled set of pictures; see docs/enrichment.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=1500)
    parser.add_argument("--precision", type=float, default=0.97)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")
    from semsearch_site.bootstrap import data_dir_prepare

    data_dir_prepare()
    import django

    django.setup()
    from search.enrichment.calibration import precision_recall, thresholds_for_precision
    from search.enrichment.toy_labels import toy_scored

    vocabulary, scores, labels = toy_scored(pictures=args.pictures, seed=11)
    thresholds = thresholds_for_precision(scores=scores, labels=labels, precision=args.precision)
    precision, recall = precision_recall(scores=scores, labels=labels, thresholds=thresholds)
    path = REPO_ROOT / "search" / "enrichment" / "vocabularies" / "toy.thresholds.json"
    measured = {tag: round(float(t), 4) for tag, t in zip(vocabulary.tags, thresholds, strict=True) if t < 2}
    never = [tag for tag, t in zip(vocabulary.tags, thresholds, strict=True) if t >= 2]
    measured.update(dict.fromkeys(never, 1.01))  # no threshold reaches the precision: never proposed
    path.write_text(json.dumps({"toy": measured}, indent=2, sort_keys=True) + "\n")
    print(f"calibration set: precision {precision:.3f}, recall {recall:.3f}; never proposed: {never or 'none'}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

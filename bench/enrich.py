"""Enrichment benchmark (not a test): OCR accuracy and speed, tagging cost next to embedding, toy tag quality.

    .venv/bin/python bench/enrich.py            # full run (~5 min on 2 cores); run it alone on the machine
    .venv/bin/python bench/enrich.py --quick    # smoke run (~1 min): same code paths, tiny counts

- *OCR*: the shipped engine (``images.services.ocr.ocr_read``: Tesseract with rotation retries) and, when its
  package is installed, RapidOCR (``rapidocr-onnxruntime``, the candidate it was chosen over) on generated pictures
  of rendered words (``search.enrichment.text_pictures``: 4 sizes x 4 colour schemes x 4 angles, Debian fonts), and
  on clear horizontal text; word recall (share of drawn words read back) and pictures/s; pictures without text.
- *Tagging cost*: per image, scoring against the everyday vocabulary (512-d text vectors of the real ViT-B/32
  architecture, random weights) plus storing ``SEMSEARCH_AUTOTAG_MAX_PER_IMAGE`` tags in a throwaway SQLite
  database, divided by the time the same model takes to embed a 1024x768 JPEG through our pipeline.
- *Toy tag quality*: micro precision/recall of the toy vocabulary with its shipped thresholds on held-out toy
  pictures (seed 2; the thresholds were measured on seed 11 by ``tools/calibrate_tags.py``).

Prints a table and writes ``bench/results/enrich.json`` (``targets`` holds the pass/fail figures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")
os.environ.setdefault("SEMSEARCH_DATA_DIR", tempfile.mkdtemp(prefix="semsearch-bench-enrich-"))
os.environ.pop("DATABASE_URL", None)  # a throwaway SQLite database in the temporary data folder

from semsearch_site.bootstrap import data_dir_prepare  # noqa: E402

data_dir_prepare()
import django  # noqa: E402

django.setup()

from bench.embed import build_vit_b32, jpeg_files, machine, ours_rate  # noqa: E402
from search.enrichment.text_pictures import TextSample, clear_text_samples, text_samples, words_recalled  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny counts")
    parser.add_argument("--out", help="default: bench/results/enrich.json; bench/work/enrich-quick.json with --quick")
    parser.add_argument("--engines", default="tesseract,rapidocr", help="OCR engines to measure (if installed)")
    args = parser.parse_args(argv)
    import torch
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    quick = args.quick
    results: dict[str, Any] = {"machine": machine(torch), "quick": quick}
    print(f"machine: {results['machine']['cpu']} | torch threads {torch.get_num_threads()}")

    samples = text_samples(seed=7, per_setting=1 if quick else 3)
    clear = clear_text_samples(seed=8, count=6 if quick else 30)
    blank = [photo for photo in _photos(4 if quick else 20)]
    results["ocr"] = {}
    for name in args.engines.split(","):
        reader = _ocr_engine(name)
        if reader is None:
            print(f"ocr {name}: not installed, skipped")
            continue
        results["ocr"][name] = ocr_measure(reader, samples, clear, blank)
        row = results["ocr"][name]
        print(
            f"ocr {name}: {row['pictures_per_s']:.1f} pictures/s, recall {row['word_recall']:.3f} "
            f"(clear {row['clear_word_recall']:.3f}), no-text pictures with words {row['blank_with_words']}"
        )

    results["tagging"] = tagging_cost(quick)
    tagging = results["tagging"]
    print(
        f"tagging: {tagging['tagging_ms_per_image']:.3f} ms/image vs embedding "
        f"{tagging['embedding_ms_per_image']:.1f} ms/image"
    )
    results["toy_tags"] = toy_tag_quality(600 if quick else 2000)
    print(f"toy tags: precision {results['toy_tags']['precision']:.3f}, recall {results['toy_tags']['recall']:.3f}")

    shipped = results["ocr"].get("tesseract", {})
    results["targets"] = {
        "ocr_word_recall": _target(shipped.get("clear_word_recall", 0.0), 0.90, ">="),
        "tagging_overhead": _target(tagging["tagging_ms_per_image"] / tagging["embedding_ms_per_image"], 0.05, "<="),
        "toy_tag_precision": _target(results["toy_tags"]["precision"], 0.90, ">="),
    }
    print_table(results)
    default_out = ROOT / "bench" / ("work/enrich-quick.json" if quick else "results/enrich.json")
    out = Path(args.out) if args.out else default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {out}")


def _photos(count: int) -> list[Any]:
    from search.embeddings.toy_data import photo_like_picture

    return [photo_like_picture(640, 480, seed=i) for i in range(count)]


def _ocr_engine(name: str) -> Any:
    """A ``picture -> text`` callable for ``name``, or None when its package is missing."""
    if name == "tesseract":
        from images.services.ocr import ocr_read

        return lambda picture: ocr_read(picture=picture).text
    if name == "rapidocr":
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            return None
        engine = RapidOCR()

        def read(picture: Any) -> str:
            found, _ = engine(np.asarray(picture.convert("RGB"))[:, :, ::-1])
            return " ".join(item[1] for item in found or [])

        return read
    raise SystemExit(f"unknown OCR engine {name!r}")


def ocr_measure(read: Any, samples: list[TextSample], clear: list[TextSample], blank: list[Any]) -> dict[str, Any]:
    read(samples[0].image)  # warm up (loads the engine)
    found: dict[str, list[int]] = {}
    started = time.perf_counter()
    for sample in samples:
        hits = words_recalled(expected=sample.words, text=read(sample.image))
        for key in ("all", f"size {sample.size}", sample.scheme, f"angle {sample.angle}"):
            total = found.setdefault(key, [0, 0])
            total[0] += hits
            total[1] += len(sample.words)
    seconds = time.perf_counter() - started
    clear_hits = sum(words_recalled(expected=s.words, text=read(s.image)) for s in clear)
    with_words = sum(bool(read(photo).strip()) for photo in blank)
    return {
        "pictures": len(samples),
        "pictures_per_s": round(len(samples) / seconds, 2),
        "word_recall": round(found["all"][0] / found["all"][1], 4),
        "clear_word_recall": round(clear_hits / sum(len(s.words) for s in clear), 4),
        "recall_by": {key: round(hit / total, 3) for key, (hit, total) in found.items() if key != "all"},
        "blank_pictures": len(blank),
        "blank_with_words": with_words,
    }


def tagging_cost(quick: bool) -> dict[str, Any]:
    """ms per image to score the everyday vocabulary and store the most tags allowed, against ViT-B/32 embedding."""
    from django.conf import settings

    from images.models import Image
    from search.embeddings.encoder import Encoder
    from search.enrichment import tag_scores, vocabulary_load
    from search.enrichment.tagging import autotags_save, tags_select, text_vectors_compute
    from search.enrichment.vocabulary import VOCABULARY_DIR

    model, tokenizer, processor = build_vit_b32()
    encoder = Encoder(
        model_id="random-vit-b32",
        model_key="random-vit-b32",
        model=model,
        tokenizer=tokenizer,
        image_processor=processor.image_processor,
        device="cpu",
        precision="fp32",
        batch_size=16,
    )
    data = jpeg_files((1024, 768), 16 if quick else 96)
    embedding_ms = 1000 / ours_rate(encoder, data, 16)
    vocabulary = vocabulary_load(path=VOCABULARY_DIR / "everyday.txt")
    started = time.perf_counter()
    text_vectors = text_vectors_compute(vocabulary=vocabulary, encoder=encoder)
    text_seconds = time.perf_counter() - started
    vectors = encoder.encode_images(data[:16])
    batches = 4 if quick else 20
    ids = [
        Image.objects.create(content_hash=f"{i:064x}", original=f"x/{i}.png", width=1, height=1, format="PNG").id
        for i in range(16 * batches)
    ]
    # The highest score per image always clears, so every image stores the most tags allowed: the worst case.
    limit = settings.SEMSEARCH_AUTOTAG_MAX_PER_IMAGE
    started = time.perf_counter()
    for b in range(batches):
        scores = tag_scores(vocabulary=vocabulary, text_vectors=text_vectors, image_vectors=vectors)
        thresholds = np.partition(scores, -limit, axis=1)[:, -limit].min() * np.ones(scores.shape[1], np.float32)
        chosen = tags_select(scores=scores, thresholds=thresholds, names=vocabulary.tags)
        autotags_save(model_key="random-vit-b32", chosen=dict(zip(ids[16 * b : 16 * b + 16], chosen, strict=True)))
    tagging_ms = (time.perf_counter() - started) * 1000 / (16 * batches)
    return {
        "vocabulary_tags": len(vocabulary.tags),
        "tags_stored_per_image": limit,
        "text_vectors_once_s": round(text_seconds, 3),
        "tagging_ms_per_image": round(tagging_ms, 4),
        "embedding_ms_per_image": round(embedding_ms, 2),
        "embedding_input": "1024x768 JPEG, fp32",
    }


def toy_tag_quality(pictures: int) -> dict[str, Any]:
    from search.enrichment.calibration import precision_recall
    from search.enrichment.toy_labels import toy_scored

    vocabulary, scores, labels = toy_scored(pictures=pictures, seed=2)
    thresholds = np.asarray(vocabulary.tag_thresholds(model_id="toy"), dtype=np.float32)
    precision, recall = precision_recall(scores=scores, labels=labels, thresholds=thresholds)
    per_tag = {}
    for j, tag in enumerate(vocabulary.tags):
        p, r = precision_recall(
            scores=scores[:, j : j + 1], labels=labels[:, j : j + 1], thresholds=thresholds[j : j + 1]
        )
        per_tag[tag] = {"precision": round(p, 3), "recall": round(r, 3)}
    return {
        "pictures": pictures,
        "seed": 2,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "per_tag": per_tag,
    }


def _target(value: float, target: float, op: str) -> dict[str, Any]:
    return {"value": round(float(value), 4), "target": target, "op": op}


def print_table(results: dict[str, Any]) -> None:
    rows = [
        (
            f"ocr {name}",
            f"{r['pictures_per_s']:.1f} pictures/s | word recall {r['word_recall']:.3f} | "
            f"clear {r['clear_word_recall']:.3f} | {r['recall_by']}",
        )
        for name, r in results["ocr"].items()
    ]
    t = results["tagging"]
    rows.append(
        (
            "tagging",
            f"{t['tagging_ms_per_image']:.3f} ms/image ({t['vocabulary_tags']} tags, "
            f"{t['tags_stored_per_image']} stored) vs embedding {t['embedding_ms_per_image']:.1f} ms/image",
        )
    )
    rows.append(
        ("toy tags", f"precision {results['toy_tags']['precision']:.3f} recall {results['toy_tags']['recall']:.3f}")
    )
    for name, target in results["targets"].items():
        ok = target["value"] >= target["target"] if target["op"] == ">=" else target["value"] <= target["target"]
        rows.append((name, f"{target['value']} {target['op']} {target['target']}: {'PASS' if ok else 'FAIL'}"))
    width = max(len(left) for left, _ in rows)
    for left, right in rows:
        print(f"{left:<{width}}  {right}")


if __name__ == "__main__":
    main()

"""Hybrid search benchmark (not a test): does fusing words and pictures help, and what does it cost?

    .venv/bin/python bench/hybrid.py                                   # the real run (~11 min on 2 cores, alone)
    .venv/bin/python bench/hybrid.py --sizes 5000,20000 --queries 20   # a smoke run

**Quality.** A labelled catalogue of toy pictures (coloured shapes the bundled toy CLIP understands; each picture
embedded by it) whose words say nothing about the shapes: a photographer, a place in the title ("Afternoon in
Lisbon"), an id-like file name (``IMG_4821.JPG``). Some words are confounders (a photographer called Jack Green,
a place called Red Hook). Three kinds of query, each with its relevant pictures:

- *text*: facts only the words hold (a photographer's name, a place, a file name);
- *visual*: facts only the pixels hold (``red circle``: every red circle);
- *mixed*: both (``red circle by Michelle Spencer``: her red circles).

For each mode (semantic, keyword, hybrid with reciprocal rank fusion, hybrid with calibrated score fusion) it
reports nDCG@10 and recall@10 (relevant in the top 10 over min(10, relevant)) per kind, through ``search_run``.

**Latency.** Rows and generated unit vectors bulk-inserted with ``bench/search.py``'s helpers (its random-weight
ViT-B/32 text encoder, its clustered vectors), with generated photographers and places; p50 of ``search_run`` in
keyword mode at the first size, and semantic against hybrid at the largest (same new queries, interleaved, the
text-vector cache cleared before every call so both pay the encoding).

Prints a table and writes ``bench/results/hybrid.json`` with the machine and top-level ``targets``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "bench" / "work" / "hybrid"
FIRST = ("Michelle", "Jeff", "Ansel", "Dorothea", "Vivian", "Henri", "Robert", "Imogen", "Jack", "Sebastião", "Nan",
         "Gordon")  # fmt: skip
LAST = ("Spencer", "Sheldon", "Adams", "Lange", "Maier", "Cartier", "Capa", "Cunningham", "Green", "Salgado",
        "Goldin", "Parks")  # fmt: skip
PLACES = ("Lisbon", "Porto", "Kyoto", "Oslo", "Quito", "Red Hook", "Nairobi", "Hobart", "Tromsø", "Valparaíso")
VISUAL = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "star"), ("purple", "cross"),
          ("orange", "circle"), ("green", "square"), ("red", "star"), ("blue", "triangle"),
          ("yellow", "cross")]  # fmt: skip
MODES = {"semantic": ("semantic", "rrf"), "keyword": ("keyword", "rrf"), "hybrid_rrf": ("hybrid", "rrf"),
         "hybrid_score": ("hybrid", "score")}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pictures", type=int, default=600, help="labelled toy pictures")
    parser.add_argument("--sizes", default="100000,1000000", help="catalogue sizes for latency, ascending")
    parser.add_argument("--queries", type=int, default=60, help="timed queries per measurement")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "hybrid.json"))
    parser.add_argument("--keep", action="store_true", help="keep bench/work/hybrid afterwards")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    for key in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(key, None)
    bench_search = _bench_search()
    os.environ.update(SEMSEARCH_DATA_DIR=str(WORK), SEMSEARCH_MODEL_ID=bench_search.MODEL_ID, LOG_LEVEL="WARNING",
                      DJANGO_SETTINGS_MODULE="semsearch_site.settings", SEMSEARCH_OCR="false")  # fmt: skip
    from semsearch_site.bootstrap import data_dir_prepare

    data_dir_prepare()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results: dict[str, Any] = {"machine": machine(), "database": "SQLite (embedded default), FTS5"}
    started = time.perf_counter()
    quality = measure_quality(args.pictures)
    results["quality"] = quality
    print_quality(quality)
    results["quality_seconds"] = round(time.perf_counter() - started, 1)
    results["latency"] = measure_latency(bench_search, sizes, args.queries)
    from search.query.types import FUSION_DEFAULT

    shipped = quality["modes"][f"hybrid_{FUSION_DEFAULT}"]
    semantic, keyword = quality["modes"]["semantic"], quality["modes"]["keyword"]
    gain = shipped["mixed"]["ndcg_at_10"] - max(semantic["mixed"]["ndcg_at_10"], keyword["mixed"]["ndcg_at_10"])
    visual = shipped["visual"]["ndcg_at_10"] / semantic["visual"]["ndcg_at_10"]
    first, last = results["latency"][str(sizes[0])], results["latency"][str(sizes[-1])]
    suffix = lambda n: "1m" if n == 1_000_000 else "100k" if n == 100_000 else str(n)  # noqa: E731
    targets = {
        "hybrid_ndcg_mixed_gain": (gain, 0.10, ">="),
        "hybrid_vs_semantic_visual": (visual, 0.98, ">="),
        f"keyword_p50_ms_{suffix(sizes[0])}": (first["keyword_p50_ms"], 20.0, "<="),
        f"hybrid_overhead_p50_{suffix(sizes[-1])}": (last["hybrid_overhead_p50"], 0.25, "<="),
    }
    results["fusion_shipped"] = FUSION_DEFAULT
    results["targets"] = {
        name: {"value": round(value, 4), "target": target, "op": op,
               "pass": value >= target if op == ">=" else value <= target}
        for name, (value, target, op) in targets.items()
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    for name, target in results["targets"].items():
        verdict = "PASS" if target["pass"] else "MISS"
        print(f"target {name}: {target['value']:.4f} ({target['op']} {target['target']}) {verdict}")
    print(f"wrote {out}")
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)


def _bench_search() -> Any:
    """``bench/search.py`` as a module: its encoder and bulk-insert helpers are reused, not copied."""
    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "bench" / "search.py")
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules["bench_search"] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
    spec.loader.exec_module(module)
    return module


# -- quality ----------------------------------------------------------------------------------------------------


def labelled_catalogue(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` picture specs (look and words) and the labelled queries over them. Deterministic."""
    from search.embeddings.toy_data import KINDS

    rng = random.Random(7)
    photographers = [f"{first} {last}" for first, last in zip(FIRST, LAST, strict=True)]
    colours = sorted({c for c, _ in VISUAL})
    pictures = []
    for number in range(n):
        pictures.append({"kind": KINDS[number % len(KINDS)], "colour": colours[(number // len(KINDS)) % len(colours)],
                         "by": rng.choice(photographers), "place": rng.choice(PLACES),
                         "file": f"IMG_{1000 + rng.randrange(9000)}.JPG", "seed": number})  # fmt: skip
    queries: list[dict[str, Any]] = []
    for name in photographers:
        queries.append({"kind": "text", "q": name, "relevant": [p["by"] == name for p in pictures]})
    for place in PLACES:
        queries.append({"kind": "text", "q": place, "relevant": [p["place"] == place for p in pictures]})
    for picture in rng.sample(pictures, 10):
        queries.append({"kind": "text", "q": picture["file"][:-4], "relevant": [p["file"] == picture["file"]
                                                                               for p in pictures]})  # fmt: skip
    for colour, kind in VISUAL:
        queries.append({"kind": "visual", "q": f"{colour} {kind}",
                        "relevant": [(p["colour"], p["kind"]) == (colour, kind) for p in pictures]})  # fmt: skip
    for colour, kind in VISUAL:
        for name in rng.sample(photographers, 3):
            relevant = [(p["colour"], p["kind"], p["by"]) == (colour, kind, name) for p in pictures]
            if any(relevant):
                queries.append({"kind": "mixed", "q": f"{colour} {kind} by {name}", "relevant": relevant})
    return pictures, queries


def measure_quality(n: int) -> dict[str, Any]:
    """Build the labelled catalogue with the toy model and score every mode on every query."""
    from PIL import Image as PILImage  # noqa: F401  (Pillow is what render_shape_picture draws with)

    from images.models import Image, ImageStatus
    from search.embeddings import get_encoder
    from search.embeddings.toy_data import render_shape_picture
    from search.models import Embedding
    from search.query import SearchQuery, query_parse
    from search.services.search import search_run

    encoder = get_encoder("toy")
    pictures, queries = labelled_catalogue(n)
    drawn = [render_shape_picture(kind=p["kind"], colour=p["colour"], count=1 + p["seed"] % 3,
                                  background=("white", "grey", "black")[p["seed"] % 3],
                                  position=("centre", "left", "right", "top", "bottom")[p["seed"] % 5],
                                  seed=p["seed"]) for p in pictures]  # fmt: skip
    vectors = encoder.encode_images(drawn)
    ids = []
    for number, (picture, vector) in enumerate(zip(pictures, vectors, strict=True)):
        image = Image.objects.create(content_hash=f"{number + 1:064x}", original=f"originals/q{number}.png",
                                     width=224, height=224, format="PNG", title=f"Afternoon in {picture['place']}",
                                     attribution=picture["by"], original_filename=picture["file"],
                                     tags=["bench"], status=ImageStatus.READY)  # fmt: skip
        Embedding.objects.create(image=image, model_key=encoder.model_key, dimension=len(vector),
                                 vector=vector.astype("<f4").tobytes())  # fmt: skip
        ids.append(image.pk)
    counts = {kind: sum(q["kind"] == kind for q in queries) for kind in ("text", "visual", "mixed")}
    report: dict[str, Any] = {"pictures": n, "queries": counts, "modes": {}}
    for label, (mode, fusion) in MODES.items():
        per_kind: dict[str, dict[str, list[float]]] = {}
        for query in queries:
            relevant = {ids[i] for i, is_relevant in enumerate(query["relevant"]) if is_relevant}
            try:
                page = search_run(query=SearchQuery(terms=query_parse(text=query["q"]), mode=mode, fusion=fusion,
                                                    limit=10, model_id="toy"))  # fmt: skip
                ranked = [hit.image.pk for hit in page.hits]
            except Exception as exc:  # a mode that cannot answer a query scores 0 on it
                print(f"  {label}: {query['q']!r}: {exc}")
                ranked = []
            scores = per_kind.setdefault(query["kind"], {"ndcg": [], "recall": []})
            scores["ndcg"].append(ndcg_at_10(ranked, relevant))
            scores["recall"].append(len(relevant & set(ranked[:10])) / min(10, len(relevant)))
        report["modes"][label] = {
            kind: {"ndcg_at_10": round(statistics.mean(s["ndcg"]), 4),
                   "recall_at_10": round(statistics.mean(s["recall"]), 4)}
            for kind, s in per_kind.items()
        }  # fmt: skip
    Embedding.objects.all().delete()
    Image.objects.all().delete()
    return report


def ndcg_at_10(ranked: list[int], relevant: set[int]) -> float:
    """Binary-relevance nDCG@10."""
    gain = sum(1 / math.log2(rank + 2) for rank, image_id in enumerate(ranked[:10]) if image_id in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return gain / ideal if ideal else 0.0


def print_quality(quality: dict[str, Any]) -> None:
    print(f"\nquality: {quality['pictures']} toy pictures, queries {quality['queries']}")
    print(f"{'mode':<14}" + "".join(f"{kind + ' nDCG/R@10':>22}" for kind in ("text", "visual", "mixed")))
    for label, kinds in quality["modes"].items():
        cells = "".join(f"{kinds[k]['ndcg_at_10']:>13.3f} / {kinds[k]['recall_at_10']:.3f}" for k in
                        ("text", "visual", "mixed"))  # fmt: skip
        print(f"{label:<14}{cells}")


# -- latency ----------------------------------------------------------------------------------------------------


def generated_texts(number: int) -> tuple[str, str]:
    """Image ``number``'s title and photographer at scale: 5,000 photographers (from 100 first and 50 last
    names... and a number), 1,000 places."""
    rng = random.Random(number)
    photographer = f"{_NAMES[rng.randrange(len(_NAMES))]} {_SURNAMES[rng.randrange(len(_SURNAMES))]}"
    return f"Afternoon in {_TOWNS[rng.randrange(len(_TOWNS))]}", photographer


_NAMES = [f"{first}{suffix}" for first in FIRST for suffix in ("", "a", "o", "ie", "y", "el", "an", "in")]
_SURNAMES = [f"{last}{suffix}" for last in LAST for suffix in ("", "s", "son", "er", "ley", "ford", "well", "ton")]
_TOWNS = [f"{place.split()[0]}{suffix}" for place in PLACES for suffix in
          ("", "ville", "burg", "ton", "ham", "stad", "port", "field", "mouth", "dale")]  # fmt: skip


def measure_latency(bench_search: Any, sizes: list[int], n: int) -> dict[str, Any]:
    from search.query import SearchQuery, query_parse
    from search.services.query_vectors import TEXT_VECTOR_CACHE
    from search.services.search import search_run

    encoder = bench_search.install_encoder(ROOT / "models" / "tiny-clip")
    out: dict[str, Any] = {}
    inserted = 0
    for size in sizes:
        started = time.perf_counter()
        bench_search.insert_catalogue(start=inserted, stop=size, dimension=encoder.dimension, texts=generated_texts)
        insert_s = time.perf_counter() - started
        inserted = size
        build = bench_search.build_index()
        rng = random.Random(size)
        texts = [f"{rng.choice(_NAMES)} {rng.choice(_SURNAMES)}" for _ in range(n + 10)]
        timings: dict[str, list[float]] = {"keyword": [], "semantic": [], "hybrid": []}
        stages: dict[str, list[float]] = {"keyword": [], "encode": []}
        for warm, text in enumerate(texts):
            for mode in ("keyword", "semantic", "hybrid"):
                TEXT_VECTOR_CACHE.clear()
                query = SearchQuery(terms=query_parse(text=text), mode=mode, limit=24)  # type: ignore[arg-type]
                t0 = time.perf_counter()
                page = search_run(query=query)
                elapsed = (time.perf_counter() - t0) * 1000
                time.sleep(bench_search.PAUSE_S)
                if warm >= 10:
                    timings[mode].append(elapsed)
                    if mode == "hybrid":
                        stages["keyword"].append(page.timings_ms.get("keyword", 0.0))
                        stages["encode"].append(page.timings_ms.get("encode", 0.0))
        p50 = {mode: statistics.median(values) for mode, values in timings.items()}
        row = {"images": size, "insert_seconds": round(insert_s, 1), "index": build, "queries": n,
               "keyword_p50_ms": round(p50["keyword"], 2), "semantic_p50_ms": round(p50["semantic"], 2),
               "hybrid_p50_ms": round(p50["hybrid"], 2),
               "hybrid_overhead_p50": round((p50["hybrid"] - p50["semantic"]) / p50["semantic"], 4),
               "hybrid_stage_p50_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()}}  # fmt: skip
        out[str(size)] = row
        print(f"{size:>9,} images  inserted in {row['insert_seconds']} s  index {build['factory']}  keyword p50 "
              f"{row['keyword_p50_ms']} ms  semantic p50 "
              f"{row['semantic_p50_ms']} ms  hybrid p50 {row['hybrid_p50_ms']} ms  overhead "
              f"{row['hybrid_overhead_p50']:.1%}  (hybrid stages p50 {row['hybrid_stage_p50_ms']})")  # fmt: skip
    return out


def machine() -> dict[str, Any]:
    import torch

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))  # fmt: skip
        flags = next(line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags"))  # fmt: skip
    except (OSError, StopIteration):
        flags = []
    simd = [f for f in flags if f.startswith(("avx", "amx", "sse4", "fma"))]
    return {"cpu": cpu, "cpu_flags": simd, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform()}  # fmt: skip


if __name__ == "__main__":
    main()

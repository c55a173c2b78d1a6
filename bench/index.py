"""Index benchmark (not a test): the index type the selector picks versus exact Flat, on clustered 512-d vectors.

    .venv/bin/python bench/index.py                      # 100k and 1M (~10 min on 2 cores; run it alone)
    .venv/bin/python bench/index.py --sizes 20000        # smoke run

Data: a Gaussian mixture (``--clusters`` centres on the unit sphere, isotropic noise, L2-normalised), so nearest
neighbours mean something; queries are held-out points of the same mixture (never in the index). For each size:
build time (train + add + the build-time recall tuning + writing the file, as production does), memory (RSS of
the snapshot as a reader loads it), single-query latency p50/p99 and recall@10 against exact Flat ground truth
computed in the same run, for the type ``search.index.kinds.index_plan`` picks under the default memory budget
and for Flat itself. faiss runs with its default thread count here (``SEMSEARCH_INDEX_THREADS``).

Prints a table and writes ``bench/results/index.json``; its ``targets`` are the figures at 1M vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")

import django  # noqa: E402

django.setup()

from search.index.build import index_settings  # noqa: E402
from search.index.faiss_runtime import batch_blas, faiss_module  # noqa: E402
from search.index.kinds import IndexPlan, index_create, index_params_apply, index_plan, index_query  # noqa: E402
from search.index.tuning import memory_rerank_source, params_tune  # noqa: E402

DIM = 512
RESULTS = ROOT / "bench" / "results" / "index.json"
TARGETS = {  # at 1M vectors, on this 2-core machine
    "recall_at_10_1m": (0.95, ">="),
    "speedup_vs_flat_1m": (50.0, ">="),
    "build_seconds_1m": (300.0, "<="),
    "memory_vs_raw_1m": (1.3, "<="),
}


def rss_bytes() -> int:
    """Resident memory now, after handing freed heap pages back to the OS (so freed temporaries do not count)."""
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mixture(n: int, *, centres: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """``n`` unit vectors: a random centre plus Gaussian noise of total norm ≈ ``noise``; float32 throughout."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    scale = np.float32(noise / np.sqrt(centres.shape[1]))  # a float32 scalar keeps numpy 2 from promoting to float64
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        chunk = centres[rng.integers(0, len(centres), stop - start)]
        chunk += rng.standard_normal(chunk.shape, dtype=np.float32) * scale
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start:stop] = chunk
    return out


def latencies_ms(search: Any, queries: np.ndarray, count: int) -> tuple[float, float]:
    times = []
    for row in range(min(count, len(queries))):
        started = time.perf_counter()
        search(queries[row : row + 1])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def recall_at_10(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(row[:10]) & set(truth[i, :10].tolist())) / 10 for i, row in enumerate(found)]))


def measure(plan: IndexPlan, ids: np.ndarray, data: np.ndarray, queries: np.ndarray, truth: np.ndarray,
            args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    index = index_create(plan=plan, ids=ids, vectors=data)
    trained = time.perf_counter()
    params, tuned_recall = params_tune(index=index, plan=plan, ids=ids, vectors=data,
                                       recall_target=index_settings()["recall_target"])  # fmt: skip
    # Like production, the build ends with the snapshot written to disk; readers then hold what read_index loads
    # (every inverted list allocated at its exact size), which is the memory that matters.
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        path = str(Path(folder) / "snapshot.faiss")
        faiss_module().write_index(index, path)
        build_seconds = time.perf_counter() - started
        del index
        gc.collect()
        before = rss_bytes()
        index = faiss_module().read_index(path)
        memory = rss_bytes() - before
    index_params_apply(index=index, params=params)
    source = memory_rerank_source(ids=ids, vectors=data) if plan.kind == "ivfpq" else None

    def search(q: np.ndarray) -> Any:
        return index_query(index=index, params=params, queries=q, k=10, rerank_source=source)

    p50, p99 = latencies_ms(search, queries, args.latency_queries)
    with batch_blas():
        found = [[image_id for image_id, _ in row] for row in search(queries)]
    row = {
        "factory": plan.factory, "params": params, "build_seconds": round(build_seconds, 2),
        "train_add_seconds": round(trained - started, 2), "memory_bytes": memory,
        "memory_vs_raw": round(memory / data.nbytes, 3), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
        "recall_at_10": round(recall_at_10(found, truth), 4),
        "build_time_recall_at_10": None if tuned_recall is None else round(tuned_recall, 4),
    }  # fmt: skip
    return row


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    faiss = faiss_module()
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = mixture(n, centres=centres, noise=args.noise, seed=args.seed + 1)
    queries = mixture(args.queries, centres=centres, noise=args.noise, seed=args.seed + 2)
    ids = np.arange(1, n + 1, dtype=np.int64)
    started = time.perf_counter()
    with batch_blas():
        _, truth_positions = faiss.knn(queries, data, 10, metric=faiss.METRIC_INNER_PRODUCT)
    truth = ids[truth_positions]
    print(f"[{n}] data ready; exact ground truth for {args.queries} queries in {time.perf_counter() - started:.1f} s")
    config = index_settings()
    chosen = index_plan(count=n, dimension=DIM, memory_budget_bytes=config["memory_budget_bytes"],
                        flat_max=config["flat_max"])  # fmt: skip
    result: dict[str, Any] = {"vectors": n, "dimension": DIM, "raw_bytes": int(data.nbytes)}
    result["chosen"] = measure(chosen, ids, data, queries, truth, args)
    print(f"[{n}] chosen {chosen.factory}: {result['chosen']}")
    result["flat"] = measure(IndexPlan("flat", "Flat"), ids, data, queries, truth, args)
    print(f"[{n}] flat: {result['flat']}")
    result["speedup_vs_flat"] = round(result["flat"]["p50_ms"] / max(result["chosen"]["p50_ms"], 1e-6), 1)
    return result


def table(runs: list[dict[str, Any]]) -> str:
    header = f"{'vectors':>9} {'index':<16} {'params':<22} {'build s':>8} {'mem/raw':>8} {'p50 ms':>8} " \
             f"{'p99 ms':>8} {'recall@10':>9} {'speedup':>8}"  # fmt: skip
    lines = [header, "-" * len(header)]
    for run in runs:
        for name in ("chosen", "flat"):
            row = run[name]
            speedup = f"{run['speedup_vs_flat']:.1f}x" if name == "chosen" else "1.0x"
            lines.append(
                f"{run['vectors']:>9} {row['factory']:<16} {json.dumps(row['params']):<22} "
                f"{row['build_seconds']:>8.1f} {row['memory_vs_raw']:>8.3f} {row['p50_ms']:>8.2f} "
                f"{row['p99_ms']:>8.2f} {row['recall_at_10']:>9.4f} {speedup:>8}"
            )
    return "\n".join(lines)


def targets(runs: list[dict[str, Any]]) -> dict[str, Any]:
    at_1m = next((run for run in runs if run["vectors"] == 1_000_000), None)
    values = {
        "recall_at_10_1m": at_1m["chosen"]["recall_at_10"] if at_1m else None,
        "speedup_vs_flat_1m": at_1m["speedup_vs_flat"] if at_1m else None,
        "build_seconds_1m": at_1m["chosen"]["build_seconds"] if at_1m else None,
        "memory_vs_raw_1m": at_1m["chosen"]["memory_vs_raw"] if at_1m else None,
    }
    return {name: {"value": values[name], "target": target, "op": op} for name, (target, op) in TARGETS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated vector counts")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries for recall")
    parser.add_argument("--latency-queries", type=int, default=200, help="single queries timed per index")
    parser.add_argument("--clusters", type=int, default=4096)
    parser.add_argument("--noise", type=float, default=1.0, help="noise norm relative to the unit centres")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--tmp", default=None, help="folder for the temporary snapshot files (default: $TMPDIR)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    faiss = faiss_module()
    runs = [run_size(n, args) for n in sizes]
    print()
    print(table(runs))
    report = {
        "benchmark": "index",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(),
        },
        "settings": {
            **index_settings(),
            "clusters": args.clusters,
            "noise": args.noise,
            "queries": args.queries,
            "latency_queries": args.latency_queries,
        },
        "runs": runs,
        "targets": targets(runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    for name, target in report["targets"].items():
        print(f"  {name}: {target['value']} (target {target['op']} {target['target']})")


if __name__ == "__main__":
    main()

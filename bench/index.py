"""Index benchmark (not a test): the index the selector picks, opened memory-mapped by three processes, versus
exact search, on clustered 512-d vectors — up to 10 million without ever holding them all in memory.

    .venv/bin/python bench/index.py                          # 1M and 10M (~1 h on 2 cores; run it alone)
    .venv/bin/python bench/index.py --sizes 20000,200000     # smoke run (~2 min)
    .venv/bin/python bench/index.py --sizes 200000 --memory-budget-mb 64 --stream-above 100000  # compressed tier

Data: a Gaussian mixture (``--clusters`` centres on the unit sphere, isotropic noise, L2-normalised), generated
deterministically in chunks of ``CHUNK`` rows (one seed per chunk), so nearest neighbours mean something and any
size is the first rows of any larger one; queries are held-out points of the same mixture (never in the index).
Sizes up to ``--stream-above`` are built in memory, as production builds the ``Flat`` and ``IVF,Flat`` tiers
(``index_create``, ``tuning_truths``); larger ones are streamed, as production streams the compressed tier
(``search.index.streamed``): trained on the first chunks, added chunk by chunk, with the exact ground truth
(held-out queries, and the build's tuning sample: ``tuning_accumulators``) accumulated chunk by chunk.

For each size, of the type ``search.index.kinds.index_plan`` picks under the memory budget: build time (train +
add + tuning + writing the snapshot file, as production does), bytes on disk; then three real processes open the
file as readers do (``snapshot_open``: memory-mapped) and search it: recall@10 against exact ground truth and
single-query p50/p99 from the first process alone; memory as PSS from ``/proc/<pid>/smaps_rollup`` of one process
and of three together, each after mapping every page of the snapshot (``MADV_POPULATE_READ``: the state a machine
reaches once traffic has touched everything, which bounds what queries alone touch). Sizes held in memory are also
measured with exact ``Flat`` in this process (``speedup_vs_flat``).

Prints a table and writes ``bench/results/index.json`` with the machine (CPU model and flags) and ``targets``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")

from semsearch_site.bootstrap import data_dir_prepare  # noqa: E402

data_dir_prepare()  # the secret key and folders a clean checkout lacks
import django  # noqa: E402

django.setup()

import search.index.kinds as kinds  # noqa: E402
from bench.embed import cpu_machine  # noqa: E402
from search.index.build import index_settings  # noqa: E402
from search.index.faiss_runtime import batch_blas, faiss_module  # noqa: E402
from search.index.storage import snapshot_file_write, snapshot_open  # noqa: E402
from search.index.tuning import (  # noqa: E402
    SAMPLE_QUERIES,
    TruthAccumulator,
    accumulated_truths,
    params_tune,
    tuning_accumulators,
    tuning_truths,
)

DIM = 512
CHUNK = 100_000
MADV_POPULATE_READ = 22
RESULTS = ROOT / "bench" / "results" / "index.json"
TARGETS = {  # on this 2-core machine
    "recall_at_10_1m": (0.95, ">="),
    "speedup_vs_flat_1m": (50.0, ">="),
    "build_seconds_1m": (300.0, "<="),
    "memory_vs_raw_1m": (1.3, "<="),
    "recall_at_10_10m": (0.95, ">="),
    "p50_ms_10m": (20.0, "<="),
    "memory_three_processes_vs_one_10m": (1.2, "<="),
    "memory_gb_10m": (8.0, "<="),
    "build_minutes_10m": (60.0, "<="),
}


class Mixture:
    """The benchmark's data: chunk ``i`` of the mixture is always the same rows, whatever the size asked for."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = np.random.default_rng(args.seed)
        self.centres = rng.standard_normal((args.clusters, DIM), dtype=np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        self.scale = np.float32(args.noise / np.sqrt(DIM))  # a float32 scalar keeps numpy 2 from promoting
        self.seed = args.seed

    def rows(self, count: int, seed: tuple[int, ...]) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = self.centres[rng.integers(0, len(self.centres), count)]
        out += rng.standard_normal(out.shape, dtype=np.float32) * self.scale
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def chunk(self, i: int, n: int) -> np.ndarray:
        return self.rows(min(CHUNK, n - i * CHUNK), (self.seed, 1, i))

    def chunks(self, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of the first ``n`` rows, one chunk at a time; ids are 1-based row numbers."""
        for i in range(-(-n // CHUNK)):
            vectors = self.chunk(i, n)
            yield np.arange(i * CHUNK + 1, i * CHUNK + 1 + len(vectors), dtype=np.int64), vectors

    def all(self, n: int) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float32)
        for ids, vectors in self.chunks(n):
            out[ids[0] - 1 : ids[-1]] = vectors
        return out

    def queries(self, count: int) -> np.ndarray:
        return self.rows(count, (self.seed, 2))


def pss_bytes(pid: int | str = "self") -> int:
    """Proportional set size: shared pages count once across the processes mapping them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss in smaps_rollup")


def anon_bytes() -> int:
    """Anonymous (private heap) memory now, after handing freed heap pages back to the OS."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) * 1024
    return 0


def populate(path: Path) -> int:
    """Fault in every page of this process's mappings of ``path`` (read-only); returns the bytes mapped."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[5] != str(path):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        total += end - start
        if libc.madvise(start, end - start, MADV_POPULATE_READ) != 0:  # older kernels: touch one byte a page
            for address in range(start, end, page):
                ctypes.string_at(address, 1)
    return total


def serve(args: argparse.Namespace) -> None:
    """Child mode: open the snapshot as a reader does, search, then answer ``populate`` / ``quit`` on stdin."""
    before = pss_bytes()
    started = time.perf_counter()
    opened = snapshot_open(path=Path(args.serve))
    open_seconds = time.perf_counter() - started
    params = json.loads(args.params)
    queries = np.load(args.queries_file)
    truth = np.load(args.truth_file)

    def search(q: np.ndarray) -> Any:
        return kinds.index_query(index=opened.index, params=params, queries=q, k=10, labels=opened.ids)

    report: dict[str, Any] = {"event": "ready", "pss_before_open": before, "open_seconds": open_seconds}
    if args.latency_queries:
        p50, p99 = latencies_ms(search, queries, args.latency_queries)
        with batch_blas():
            found = [[image_id for image_id, _ in row] for row in search(queries)]
        report.update(p50_ms=p50, p99_ms=p99, recall_at_10=recall_at_10(found, truth))
    print(json.dumps(report), flush=True)
    for line in sys.stdin:
        if line.strip() == "populate":
            print(json.dumps({"event": "populated", "mapped": populate(opened.path)}), flush=True)
        elif line.strip() == "quit":
            return


def latencies_ms(search: Any, queries: np.ndarray, count: int) -> tuple[float, float]:
    times = []
    for row in range(min(count, len(queries))):
        started = time.perf_counter()
        search(queries[row : row + 1])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def recall_at_10(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(row[:10]) & set(truth[i, :10].tolist())) / 10 for i, row in enumerate(found)]))


class Reader:
    """One searching child process (``bench/index.py --serve``)."""

    def __init__(self, path: Path, params: dict[str, Any], files: tuple[Path, Path], latency_queries: int) -> None:
        command = [sys.executable, __file__, "--serve", str(path), "--params", json.dumps(params),
                   "--queries-file", str(files[0]), "--truth-file", str(files[1]),
                   "--latency-queries", str(latency_queries)]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def expect(self, event: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                message = json.loads(line)
                if message.get("event") == event:
                    return message
        raise RuntimeError(f"reader {self.process.pid} exited before '{event}'")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.send("quit")
        self.process.wait(timeout=60)


def readers_measure(path: Path, params: dict[str, Any], files: tuple[Path, Path], args: argparse.Namespace,
                    raw_bytes: int) -> dict[str, Any]:  # fmt: skip
    """Latency and recall from one reader alone, then PSS of one reader and of three, every page mapped."""
    first = Reader(path, params, files, args.latency_queries)
    readers = [first]
    try:
        ready = first.expect("ready")
        warm = pss_bytes(first.process.pid)  # after the recall and latency queries only
        first.send("populate")
        first.expect("populated")
        one = pss_bytes(first.process.pid)
        readers += [Reader(path, params, files, 0) for _ in range(2)]
        baselines = [ready["pss_before_open"]] + [r.expect("ready")["pss_before_open"] for r in readers[1:]]
        for reader in readers[1:]:
            reader.send("populate")
            reader.expect("populated")
        three = sum(pss_bytes(r.process.pid) for r in readers)
    finally:
        for reader in readers:
            reader.stop()
    one_index = one - ready["pss_before_open"]
    return {
        "open_seconds": round(ready["open_seconds"], 3), "p50_ms": round(ready["p50_ms"], 3),
        "p99_ms": round(ready["p99_ms"], 3), "recall_at_10": round(ready["recall_at_10"], 4),
        "pss_one_process_bytes": one, "pss_three_processes_bytes": three,
        "pss_one_process_after_queries_only_bytes": warm,
        "pss_one_process_index_bytes": one_index,
        "pss_three_processes_index_bytes": three - sum(baselines),
        "three_processes_vs_one": round(three / max(one, 1), 3),
        "memory_vs_raw": round(one_index / raw_bytes, 3),
    }  # fmt: skip


def build_in_memory(plan: kinds.IndexPlan, data: np.ndarray) -> tuple[Any, np.ndarray, dict[str, Any], float | None,
                                                                 dict[str, float]]:  # fmt: skip
    """Build as production builds the small tiers (``search.index.build``): every vector in memory."""
    ids = np.arange(1, len(data) + 1, dtype=np.int64)
    started = time.perf_counter()
    index, labels = kinds.index_create(plan=plan, ids=ids, vectors=data)
    added = time.perf_counter()
    params, recall = params_tune(index=index, plan=plan, labels=labels, truths=tuning_truths(ids=ids, vectors=data),
                                 recall_target=index_settings()["recall_target"])  # fmt: skip
    return index, labels, params, recall, {"train_add": added - started, "tune": time.perf_counter() - added}


def build_streamed(plan: kinds.IndexPlan, n: int, mixture: Mixture, held_out: TruthAccumulator,
                   args: argparse.Namespace) -> tuple[Any, np.ndarray, dict[str, Any], float | None,
                                                      dict[str, float]]:  # fmt: skip
    """Build without holding the vectors: train on the first chunks (the chunks are i.i.d.), add chunk by chunk,
    accumulating the exact truth of the held-out queries (the benchmark's) and of the tuning sample (the build's)."""
    seconds = dict.fromkeys(("generate", "train", "add", "tune_truth", "held_out_truth", "tune"), 0.0)
    clock = time.perf_counter()
    first = np.concatenate([mixture.chunk(i, n) for i in range(-(-plan.train_size // CHUNK))])
    seconds["generate"] += time.perf_counter() - clock
    index = kinds.index_new(plan=plan, dimension=DIM)
    clock = time.perf_counter()
    kinds.index_train(index=index, sample=first[: plan.train_size])
    seconds["train"] = time.perf_counter() - clock
    rng = np.random.default_rng(7)
    positions = rng.choice(len(first), size=min(SAMPLE_QUERIES, n), replace=False)
    tuning = tuning_accumulators(queries=first[positions], query_ids=positions + 1, count=n)
    del first
    clock = time.perf_counter()
    for ids, vectors in mixture.chunks(n):
        t0 = time.perf_counter()
        kinds.index_add(index=index, vectors=vectors)
        t1 = time.perf_counter()
        for accumulator in tuning:
            accumulator.add(ids=ids, vectors=vectors)
        t2 = time.perf_counter()
        held_out.add(ids=ids, vectors=vectors)
        seconds["generate"] += t0 - clock
        seconds["add"] += t1 - t0
        seconds["tune_truth"] += t2 - t1
        clock = time.perf_counter()
        seconds["held_out_truth"] += clock - t2
        if (ids[0] // CHUNK) % 10 == 9:
            print(f"[{n}] added {ids[-1]:,} vectors; anonymous memory {anon_bytes() / 1e9:.2f} GB", flush=True)
    labels = np.arange(1, n + 1, dtype=np.int64)
    clock = time.perf_counter()
    truths = accumulated_truths(tuning)
    params, recall = params_tune(index=index, plan=plan, labels=labels, truths=truths,
                                 recall_target=index_settings()["recall_target"])  # fmt: skip
    seconds["tune"] = time.perf_counter() - clock
    return index, labels, params, recall, seconds


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    faiss = faiss_module()
    mixture = Mixture(args)
    queries = mixture.queries(args.queries)
    config = index_settings()
    plan = kinds.index_plan(count=n, dimension=DIM, memory_budget_bytes=config["memory_budget_bytes"],
                      flat_max=config["flat_max"])  # fmt: skip
    streamed = n > args.stream_above
    result: dict[str, Any] = {"vectors": n, "dimension": DIM, "raw_bytes": n * DIM * 4, "streamed": streamed}
    held_out = TruthAccumulator(queries=queries, exclude=np.full(len(queries), -1))
    data = None
    started = time.perf_counter()
    if streamed:
        index, labels, params, tuned, seconds = build_streamed(plan, n, mixture, held_out, args)
        build = seconds["train"] + seconds["add"] + seconds["tune_truth"] + seconds["tune"]
    else:
        data = mixture.all(n)
        clock = time.perf_counter()
        held_out.add(ids=np.arange(1, n + 1, dtype=np.int64), vectors=data)
        truth_seconds = time.perf_counter() - clock
        print(f"[{n}] data ready; exact ground truth for {args.queries} queries in {truth_seconds:.1f} s")
        index, labels, params, tuned, seconds = build_in_memory(plan, data)
        build = seconds["train_add"] + seconds["tune"]
    peak_anon = anon_bytes()
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        path = Path(folder) / "snapshot.faiss"
        clock = time.perf_counter()
        snapshot_file_write(index=index, ids=labels, path=path)
        seconds["write"] = time.perf_counter() - clock
        build += seconds["write"]
        del index
        gc.collect()
        truth = held_out.truth()
        files = (Path(folder) / "queries.npy", Path(folder) / "truth.npy")
        np.save(files[0], queries)
        np.save(files[1], np.stack([row[:10] for row in truth.neighbours]))
        print(f"[{n}] built {plan.factory} {params} in {build:.1f} s; three readers next", flush=True)
        chosen = {
            "factory": plan.factory, "params": params, "build_seconds": round(build, 2),
            "seconds": {name: round(value, 2) for name, value in seconds.items()},
            "file_bytes": path.stat().st_size, "file_bytes_per_vector": round(path.stat().st_size / n, 1),
            "builder_anonymous_bytes_after_add": peak_anon,
            "build_time_recall_at_10": None if tuned is None else round(tuned, 4),
            **readers_measure(path, params, files, args, n * DIM * 4),
        }  # fmt: skip
    result["chosen"] = chosen
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"[{n}] chosen: {chosen}", flush=True)
    if data is not None and not args.skip_flat:
        result["flat"] = flat_measure(data, queries, truth.neighbours, args)
        result["speedup_vs_flat"] = round(result["flat"]["p50_ms"] / max(chosen["p50_ms"], 1e-6), 1)
        print(f"[{n}] flat: {result['flat']}", flush=True)
    result["peak_rss_bytes_so_far"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del faiss
    return result


def flat_measure(data: np.ndarray, queries: np.ndarray, truth: list[np.ndarray], args: argparse.Namespace) -> dict:
    """Exact ``Flat`` over the same vectors in this process: the baseline of ``speedup_vs_flat``."""
    flat = kinds.IndexPlan("flat", "Flat")
    index, labels = kinds.index_create(plan=flat, ids=np.arange(1, len(data) + 1), vectors=data)

    def search(q: np.ndarray) -> Any:
        return kinds.index_query(index=index, params={}, queries=q, k=10, labels=labels)

    p50, p99 = latencies_ms(search, queries, args.latency_queries)
    with batch_blas():
        found = [[image_id for image_id, _ in row] for row in search(queries)]
    return {"factory": "Flat", "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
            "recall_at_10": round(recall_at_10(found, np.stack([row[:10] for row in truth])), 4)}  # fmt: skip


def table(runs: list[dict[str, Any]]) -> str:
    header = (f"{'vectors':>10} {'index':<36} {'params':<28} {'build s':>8} {'disk GB':>8} {'1 proc GB':>9} "
              f"{'3 proc GB':>9} {'3/1':>5} {'p50 ms':>7} {'p99 ms':>7} {'recall':>7} {'speedup':>8}")  # fmt: skip
    lines = [header, "-" * len(header)]
    for run in runs:
        row = run["chosen"]
        speedup = f"{run['speedup_vs_flat']:.1f}x" if "speedup_vs_flat" in run else "-"
        lines.append(
            f"{run['vectors']:>10,} {row['factory']:<36} {json.dumps(row['params']):<28} {row['build_seconds']:>8.1f} "
            f"{row['file_bytes'] / 1e9:>8.3f} {row['pss_one_process_bytes'] / 1e9:>9.3f} "
            f"{row['pss_three_processes_bytes'] / 1e9:>9.3f} {row['three_processes_vs_one']:>5.2f} "
            f"{row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {row['recall_at_10']:>7.4f} {speedup:>8}"
        )
        if "flat" in run:
            flat = run["flat"]
            lines.append(f"{'':>10} {'Flat (exact, in memory)':<36} {'{}':<28} {'':>8} {'':>8} {'':>9} {'':>9} "
                         f"{'':>5} {flat['p50_ms']:>7.2f} {flat['p99_ms']:>7.2f} {flat['recall_at_10']:>7.4f} "
                         f"{'1.0x':>8}")  # fmt: skip
    return "\n".join(lines)


def targets(runs: list[dict[str, Any]]) -> dict[str, Any]:
    at = {run["vectors"]: run for run in runs}
    one, ten = at.get(1_000_000), at.get(10_000_000)
    values = {
        "recall_at_10_1m": one["chosen"]["recall_at_10"] if one else None,
        "speedup_vs_flat_1m": one.get("speedup_vs_flat") if one else None,
        "build_seconds_1m": one["chosen"]["build_seconds"] if one else None,
        "memory_vs_raw_1m": one["chosen"]["memory_vs_raw"] if one else None,
        "recall_at_10_10m": ten["chosen"]["recall_at_10"] if ten else None,
        "p50_ms_10m": ten["chosen"]["p50_ms"] if ten else None,
        "memory_three_processes_vs_one_10m": ten["chosen"]["three_processes_vs_one"] if ten else None,
        "memory_gb_10m": round(ten["chosen"]["pss_three_processes_bytes"] / 1e9, 3) if ten else None,
        "build_minutes_10m": round(ten["chosen"]["build_seconds"] / 60, 1) if ten else None,
    }
    return {name: {"value": values[name], "target": target, "op": op} for name, (target, op) in TARGETS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated vector counts")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries for recall")
    parser.add_argument("--latency-queries", type=int, default=200, help="single queries timed per index")
    parser.add_argument("--clusters", type=int, default=4096)
    parser.add_argument("--noise", type=float, default=1.0, help="noise norm relative to the unit centres")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stream-above", type=int, default=2_000_000, help="larger sizes are never held in memory")
    parser.add_argument("--memory-budget-mb", type=int, default=None, help="SEMSEARCH_INDEX_MEMORY_BUDGET_MB here")
    parser.add_argument("--skip-flat", action="store_true", help="no exact Flat comparison")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--tmp", default=None, help="folder for the temporary snapshot files (default: $TMPDIR)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", help=argparse.SUPPRESS)
    parser.add_argument("--truth-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    if args.memory_budget_mb is not None:
        from django.conf import settings

        settings.SEMSEARCH_INDEX_MEMORY_BUDGET_MB = args.memory_budget_mb
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    faiss = faiss_module()
    runs = [run_size(n, args) for n in sizes]
    print()
    print(table(runs))
    report = {
        "benchmark": "index",
        "machine": {
            **cpu_machine(),
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
            "stream_above": args.stream_above,
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

"""Capacity table for docs/operations.md, from the benchmark results (not a test).

    .venv/bin/python bench/report.py        # reads bench/results/embed.json and bench/results/index.json

Prints, as Markdown:

1. index memory per million vectors for each index type: *computed* from Faiss's storage layout for the active
   dimension (always printed), and *measured* rows from ``index.json`` (the index type the builder chose at each
   benchmarked size: the snapshot file, which every reader process of a machine maps and shares, scaled to one
   million, with the PSS of three readers);
2. embedding throughput from ``embed.json``: images/s for the whole machine and per core, per image size.

A missing results file is named, not guessed: its table says which ``make bench-*`` target writes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GB = 1e9  # decimal gigabytes, as memory budgets are usually quoted


def computed_bytes_per_vector(dim: int, pq_bytes: int = 64, hnsw_m: int = 32) -> dict[str, float]:
    """Bytes per vector of each index type as Faiss stores it, with the id overheads ``search.index.kinds`` uses.

    ``Flat``: float32 vector + the 8-byte image id of the snapshot's ids section; IVF lists: + 8 B more (the label
    in the list); the refine tier: PQ code + 1 B a dimension of SQ8 code + 16 B; HNSW adds 2·M neighbour links of
    4 B on level 0 and ~1/M of that above (listed for comparison: the builder does not use it). Coarse centroids
    and codebooks are fixed costs (a few MB), left out. Snapshots are memory-mapped: this is per machine, whatever
    the number of processes.
    """
    raw = 4 * dim
    return {
        "Flat": raw + 8,
        "IVF,Flat": raw + 16,
        f"HNSW{hnsw_m}": raw + 2 * hnsw_m * 4 * (1 + 1 / hnsw_m) + 8,
        f"OPQ{pq_bytes},IVF,PQ{pq_bytes},Refine(SQ8)": pq_bytes + dim + 16,
    }


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def memory_table(index: dict[str, Any] | None, dim: int) -> list[str]:
    lines = ["| Index type | Memory per 1M vectors | Source |", "|---|---|---|"]
    for factory, per_vector in computed_bytes_per_vector(dim).items():
        lines.append(f"| `{factory}` | {per_vector * 1e6 / GB:.2f} GB | computed ({dim}-d) |")
    if index is None:
        lines.append("| (measured) | run `make bench-index` | bench/results/index.json missing |")
        return lines
    for run in index.get("runs", []):
        row = run.get("chosen")
        if not row or not row.get("file_bytes"):
            continue
        source = (
            f"measured at {run['vectors']:,} vectors: file {row['file_bytes'] / GB:.2f} GB, PSS of 3 readers "
            f"{row['pss_three_processes_bytes'] / GB:.2f} GB ({row['three_processes_vs_one']}x one), recall@10 "
            f"{row['recall_at_10']}, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, build {row['build_seconds']} s"
        )
        lines.append(f"| `{row['factory']}` | {row['file_bytes'] / run['vectors'] * 1e6 / GB:.2f} GB | {source} |")
    return lines


def throughput_table(embed: dict[str, Any] | None) -> list[str]:
    lines = ["| Image size | Images/s (machine) | Images/s per core | Machine |", "|---|---|---|---|"]
    if embed is None:
        lines.append("| (measured) | run `make bench-embed` | | bench/results/embed.json missing |")
        return lines
    machine = embed.get("machine", {})
    cores = machine.get("torch_threads") or machine.get("cores") or 1
    where = f"{machine.get('cpu', '?')}, {cores} threads, {embed.get('shipped_precision', '?')}"
    if embed.get("quick"):
        where += " (quick run: indicative only)"
    for size, row in embed.get("ingest", {}).items():
        rate = row["ours_images_per_s"]
        lines.append(f"| {size} | {rate:.1f} | {rate / cores:.1f} | {where} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=512, help="vector dimension (512: ViT-B/32)")
    args = parser.parse_args(argv)
    print("### Index memory\n")
    print("\n".join(memory_table(load("index.json"), args.dim)))
    print("\n### Embedding throughput (JPEG bytes to stored vectors)\n")
    print("\n".join(throughput_table(load("embed.json"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

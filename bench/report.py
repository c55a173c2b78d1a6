"""Capacity table for docs/operations.md, from the benchmark results (not a test).

    .venv/bin/python bench/report.py        # reads bench/results/embed.json and bench/results/index.json

Prints, as Markdown:

1. index memory per million vectors for each index type: *computed* from Faiss's storage layout for the active
   dimension (always printed), and *measured* rows from ``index.json`` where it has them;
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
    """Bytes per vector of each index type as Faiss stores it (float32 vectors, 8-byte ids in IndexIDMap2).

    IDMap2 keeps the id array (8 B) and a reverse hash map (~32 B an entry); HNSW adds 2*M neighbour links of 4 B on
    level 0 plus ~1/M of that on upper levels; IVF lists store an 8-byte id beside each code. Coarse centroids and
    PQ codebooks are fixed costs (a few MB), left out of the per-vector figure.
    """
    idmap = 8 + 32
    raw = 4 * dim
    return {
        "Flat": raw + idmap,
        "IVF,Flat": raw + 8 + idmap,
        f"HNSW{hnsw_m}": raw + 2 * hnsw_m * 4 * (1 + 1 / hnsw_m) + idmap,
        f"IVF,PQ{pq_bytes}": pq_bytes + 8 + idmap,
    }


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def rows_with(data: Any, key: str) -> list[dict[str, Any]]:
    """Every dict anywhere in ``data`` that has ``key`` (index.json lists one per index type and size)."""
    if isinstance(data, dict):
        found = [data] if key in data else []
        return found + [row for value in data.values() for row in rows_with(value, key)]
    if isinstance(data, list):
        return [row for value in data for row in rows_with(value, key)]
    return []


def memory_table(index: dict[str, Any] | None, dim: int) -> list[str]:
    lines = ["| Index type | Memory per 1M vectors | Source |", "|---|---|---|"]
    for factory, per_vector in computed_bytes_per_vector(dim).items():
        lines.append(f"| `{factory}` | {per_vector * 1e6 / GB:.2f} GB | computed ({dim}-d) |")
    if index is None:
        lines.append("| (measured) | run `make bench-index` | bench/results/index.json missing |")
        return lines
    for row in rows_with(index, "factory"):
        bytes_total = row.get("memory_bytes") or row.get("bytes") or row.get("file_bytes")
        vectors = row.get("vectors") or row.get("vector_count") or row.get("n")
        if not bytes_total or not vectors:
            continue
        extra = ", ".join(f"{k} {row[k]}" for k in ("recall_at_10", "search_ms_p50", "build_seconds") if k in row)
        source = f"measured, {vectors:,} vectors" + (f", {extra}" if extra else "")
        lines.append(f"| `{row['factory']}` | {bytes_total / vectors * 1e6 / GB:.2f} GB | {source} |")
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

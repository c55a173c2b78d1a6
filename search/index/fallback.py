"""The exact fallback's vectors: one memory-mapped file per machine, shared by every process that falls back.

While a model has no usable snapshot, searches scan every stored vector exactly. Instead of each process loading
all of them from the database into its own memory, the first one to need them streams them (``vectors_iter``, one
chunk in memory) into ``INDEX_ROOT/<model folder>/exact/upto<last embedding id>-d<dimension>.{f32,ids}`` (raw
float32 rows, int64 image ids; temp file, fsync, ``os.replace``; the ids file last, so its presence means the pair
is complete), and every process maps the pair read-only: the pages are shared through the page cache. Another
process falling back at the same watermark finds the pair and maps it at once. Disk: 4·d bytes a vector.
The files are derived data: removed once a snapshot is built (``exact_files_prune``).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np

from .storage import TEMP_MARKER, index_root, model_folder_name
from .vectors import VectorSet, embedding_dimension, last_embedding_id, vectors_iter

logger = logging.getLogger(__name__)

FOLDER = "exact"
NAME = re.compile(r"^upto(\d+)-d(\d+)\.(f32|ids)$")


def _folder(model_key: str) -> Path:
    return index_root() / model_folder_name(model_key) / FOLDER


def _mapped(vectors_path: Path, ids_path: Path, dimension: int, upto: int) -> VectorSet | None:
    """The pair memory-mapped, or None when it is absent or its two halves disagree in length."""
    try:
        count = ids_path.stat().st_size // 8
        if vectors_path.stat().st_size != count * dimension * 4:
            return None
    except FileNotFoundError:
        return None
    if count == 0:
        return VectorSet(np.empty(0, np.int64), np.empty((0, dimension), np.float32), upto)
    ids = np.memmap(ids_path, dtype="<i8", mode="r", shape=(count,))
    vectors = np.memmap(vectors_path, dtype="<f4", mode="r", shape=(count, dimension))
    return VectorSet(ids, vectors, upto)


def _write(model_key: str, upto: int, vectors_path: Path, ids_path: Path) -> None:
    """Stream the stored vectors with ids up to ``upto`` into the pair (atomically, ids last)."""
    suffix = f"{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temps = (vectors_path.with_name(vectors_path.name + suffix), ids_path.with_name(ids_path.name + suffix))
    try:
        with open(temps[0], "wb") as vectors_file, open(temps[1], "wb") as ids_file:
            for ids, vectors in vectors_iter(model_key=model_key, upto_id=upto):
                vectors_file.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
                ids_file.write(ids.astype("<i8").tobytes())
            for handle in (vectors_file, ids_file):
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temps[0], vectors_path)
        os.replace(temps[1], ids_path)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def exact_vectors_load(*, model_key: str) -> VectorSet:
    """Every stored vector of ``model_key`` (up to the newest embedding now), memory-mapped from the shared file.

    Side effects: writes the file pair if this machine has none for the current watermark (streamed from the
    database), and removes older pairs. Idempotent.
    """
    upto = last_embedding_id(model_key=model_key)
    dimension = embedding_dimension(model_key=model_key) if upto else None
    if not upto or not dimension:
        return VectorSet(np.empty(0, np.int64), np.empty((0, 0), np.float32), upto)
    folder = _folder(model_key)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"upto{upto:012d}-d{dimension}"
    vectors_path, ids_path = folder / f"{stem}.f32", folder / f"{stem}.ids"
    mapped = _mapped(vectors_path, ids_path, dimension, upto)
    if mapped is None:
        started = time.perf_counter()
        _write(model_key, upto, vectors_path, ids_path)
        mapped = _mapped(vectors_path, ids_path, dimension, upto)
        if mapped is None:
            raise RuntimeError(f"the exact fallback file {vectors_path} vanished as it was written")
        logger.warning("wrote the exact fallback vectors of %s (%d vectors, %.1f s): %s", model_key, mapped.count,
                       time.perf_counter() - started, vectors_path)  # fmt: skip
        exact_files_prune(model_key=model_key, keep=stem)
    return mapped


def exact_files_prune(*, model_key: str, keep: str | None = None, temp_older_than_s: float = 3600) -> list[str]:
    """Remove ``model_key``'s exact-fallback files except the pair named ``keep`` and temp files younger than
    ``temp_older_than_s`` (a process may be writing them). Processes still mapping a removed file keep reading it
    (the inode lives until unmapped). Returns the removed names; idempotent."""
    folder = _folder(model_key)
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.iterdir():
        if TEMP_MARKER in path.name:
            try:
                if now - path.stat().st_mtime < temp_older_than_s:
                    continue
            except FileNotFoundError:
                continue
        elif not NAME.match(path.name) or path.name.rsplit(".", 1)[0] == keep:
            continue
        path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed

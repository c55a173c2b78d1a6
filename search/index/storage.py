"""Snapshot files: atomic, checksummed writes and verified reads under ``INDEX_ROOT``.

A snapshot is written to a temporary file in its final folder, fsynced, renamed into place with ``os.replace``
and the folder fsynced, so a crash at any moment leaves either no file or a complete one; the database row that
makes it active is only recorded after that (see ``build.py``). Readers verify the sha256 before handing the file
to faiss, so a truncated or corrupted file is rejected instead of half-loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from .errors import SnapshotCorruptError

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

TEMP_MARKER = ".tmp-"
READ_CHUNK = 16 * 1024 * 1024


def index_root() -> Path:
    return Path(settings.INDEX_ROOT)


def model_folder_name(model_key: str) -> str:
    """A filesystem-safe, collision-free folder name for a model key."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_key)[:80]
    return f"{readable}-{hashlib.sha256(model_key.encode()).hexdigest()[:12]}"


def snapshot_relative_path(*, model_key: str, version: int) -> str:
    return f"{model_folder_name(model_key)}/v{version:06d}.faiss"


def _write_chunk(handle: Any, hasher: Any, data: bytes) -> None:
    """One chunk of a snapshot write (a function of its own so a crash test can stop a writer mid-file)."""
    handle.write(data)
    hasher.update(data)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def snapshot_write(*, index: faiss.Index, model_key: str, version: int) -> tuple[str, str]:
    """Write ``index`` durably as ``version`` of ``model_key``; returns (path relative to the index root, sha256).

    Side effects: creates the model folder; the final file appears only complete (temp file, fsync, os.replace,
    fsync folder). A process killed part-way leaves only a temp file, which ``snapshot_files_prune`` removes.
    """
    from .faiss_runtime import faiss_module

    faiss = faiss_module()
    relative = snapshot_relative_path(model_key=model_key, version=version)
    final = index_root() / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f"{final.name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    hasher = hashlib.sha256()
    try:
        with open(temp, "wb") as handle:

            def write(data: bytes) -> int:
                _write_chunk(handle, hasher, data)
                return len(data)

            writer = faiss.PyCallbackIOWriter(write)
            faiss.write_index(index, writer)
            del writer  # flushes faiss's buffer through the callback
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_folder(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return relative, hasher.hexdigest()


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def snapshot_verify(*, file_path: str, checksum: str) -> Path:
    """The snapshot's absolute path after checking that it exists and matches ``checksum``; read-only.

    Raises ``SnapshotCorruptError`` (missing, truncated, modified).
    """
    path = index_root() / file_path
    if not path.is_file():
        raise SnapshotCorruptError(f"snapshot file {path} is missing")
    actual = file_sha256(path)
    if actual != checksum:
        raise SnapshotCorruptError(
            f"snapshot file {path} fails its checksum (sha256 {actual[:12]}…, recorded {checksum[:12]}…)"
        )
    return path


def snapshot_read(*, file_path: str, checksum: str) -> faiss.Index:
    """Load a verified snapshot into memory. Raises ``SnapshotCorruptError`` if it is missing or damaged."""
    from .faiss_runtime import faiss_module

    path = snapshot_verify(file_path=file_path, checksum=checksum)
    try:
        return faiss_module().read_index(str(path))
    except RuntimeError as exc:  # matched its checksum yet faiss cannot read it: written by an incompatible faiss
        raise SnapshotCorruptError(f"faiss cannot read snapshot {path}: {exc}") from exc


def snapshot_files_prune(*, model_key: str, keep: set[str], temp_older_than_s: float = 3600) -> list[str]:
    """Delete ``model_key``'s snapshot files not in ``keep`` (relative paths) and stale temp files.

    Temp files younger than ``temp_older_than_s`` are left alone (a writer may still own them); pass 0 while
    holding the build lock, when no writer can exist. Returns the removed relative paths. Idempotent.
    """
    folder = index_root() / model_folder_name(model_key)
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for path in folder.iterdir():
        relative = f"{folder.name}/{path.name}"
        if TEMP_MARKER in path.name:
            try:
                stale = now - path.stat().st_mtime >= temp_older_than_s
            except FileNotFoundError:
                continue
            if not stale:
                continue
        elif not path.name.endswith(".faiss") or relative in keep:
            continue
        path.unlink(missing_ok=True)
        removed.append(relative)
    if removed:
        logger.info("removed %d old snapshot file(s) of %s: %s", len(removed), model_key, ", ".join(removed))
    return removed

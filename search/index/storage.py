"""Snapshot files: atomic, checksummed writes and verified, memory-mapped reads under ``INDEX_ROOT``.

A snapshot is written to a temporary file in its final folder, fsynced, renamed into place with ``os.replace``
and the folder fsynced, so a crash at any moment leaves either no file or a complete one; the database row that
makes it active is only recorded after that (see ``build.py``). Readers verify the sha256 before handing the file
to faiss, so a truncated or corrupted file is rejected instead of half-loaded.

Layout: the faiss index (its labels are positions ``0..n-1``), then, at a page boundary, the image id of every
position (int64, ascending), then a 24-byte footer (``IDS_MAGIC``, offset, count). faiss ignores the bytes after
its index. Readers open both parts memory-mapped (``IO_FLAG_MMAP_IFC``: Flat, IVF lists, PQ and SQ codes), so
every process on a machine shares one copy of the pages through the page cache. A file without the footer was
written before this layout (an ``IndexIDMap2``: labels are image ids) and still opens.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from .errors import SnapshotCorruptError

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

TEMP_MARKER = ".tmp-"
READ_CHUNK = 16 * 1024 * 1024
IDS_MAGIC = b"SEMSIDS1"
FOOTER = struct.Struct("<8sQQ")  # magic, byte offset of the ids, their count
IDS_ALIGN = 4096


@dataclass
class OpenSnapshot:
    """A snapshot opened memory-mapped: the faiss index, the image id of each of its labels, the file it maps.

    ``ids`` is None for a file of the earlier layout (labels are image ids). A descriptor of the file stays open
    (closed with this object) so that ``intact`` can tell, with one ``fstat``, whether the mapped file was truncated
    in place under the reader.
    """

    index: Any
    ids: np.ndarray | None
    path: Path
    size: int
    fd: int = -1

    def intact(self) -> bool:
        """False once the mapped file is shorter than when it was opened (touching its tail would SIGBUS)."""
        try:
            return self.fd < 0 or os.fstat(self.fd).st_size >= self.size
        except OSError:
            return False


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


def snapshot_write(*, index: faiss.Index, ids: np.ndarray, model_key: str, version: int) -> tuple[str, str]:
    """Write ``index`` (labels ``0..n-1``) and ``ids`` (the image id of each label, ascending) durably as
    ``version`` of ``model_key``; returns (path relative to the index root, sha256).

    Side effects: creates the model folder; the final file appears only complete (temp file, fsync, os.replace,
    fsync folder). A process killed part-way leaves only a temp file, which ``snapshot_files_prune`` removes.
    """
    relative = snapshot_relative_path(model_key=model_key, version=version)
    final = index_root() / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f"{final.name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        checksum = snapshot_file_write(index=index, ids=ids, path=temp)
        os.replace(temp, final)
        _fsync_folder(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return relative, checksum


def snapshot_file_write(*, index: faiss.Index, ids: np.ndarray, path: Path) -> str:
    """Write the snapshot layout (index, ids, footer) to ``path`` and fsync it; returns its sha256. Not atomic:
    ``snapshot_write`` calls it on a temporary file (the benchmark on a scratch one)."""
    from .faiss_runtime import faiss_module

    faiss = faiss_module()
    hasher = hashlib.sha256()
    written = 0
    with open(path, "wb") as handle:

        def write(data: bytes) -> int:
            nonlocal written
            _write_chunk(handle, hasher, data)
            written += len(data)
            return len(data)

        writer = faiss.PyCallbackIOWriter(write)
        faiss.write_index(index, writer)
        del writer  # flushes faiss's buffer through the callback
        labels = np.ascontiguousarray(ids, dtype="<i8")
        offset = -(-written // IDS_ALIGN) * IDS_ALIGN
        write(b"\0" * (offset - written))
        for start in range(0, len(labels), READ_CHUNK // 8):
            write(labels[start : start + READ_CHUNK // 8].tobytes())
        write(FOOTER.pack(IDS_MAGIC, offset, len(labels)))
        handle.flush()
        os.fsync(handle.fileno())
    return hasher.hexdigest()


def file_sha256(path: Path) -> str:
    """The file's sha256, read in 16 MB chunks: the pages pass through the shared page cache, not this process."""
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


def snapshot_read(*, file_path: str, checksum: str) -> OpenSnapshot:
    """Open a verified snapshot memory-mapped. Raises ``SnapshotCorruptError`` if it is missing or damaged."""
    return snapshot_open(path=snapshot_verify(file_path=file_path, checksum=checksum))


def snapshot_open(*, path: Path) -> OpenSnapshot:
    """Open the snapshot file at ``path`` memory-mapped, without checking its checksum (``snapshot_read`` does).

    Raises ``SnapshotCorruptError`` when faiss cannot read it or its ids do not match the index.
    """
    from .faiss_runtime import faiss_module

    faiss = faiss_module()
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise SnapshotCorruptError(f"snapshot file {path} is missing") from exc
    try:
        size = os.fstat(fd).st_size
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        ids = _ids_map(fd, path, size)
        if ids is not None and len(ids) != index.ntotal:
            raise SnapshotCorruptError(f"snapshot {path} holds {index.ntotal} vectors but {len(ids)} ids")
    except RuntimeError as exc:  # matched its checksum yet faiss cannot read it: written by an incompatible faiss
        os.close(fd)
        raise SnapshotCorruptError(f"faiss cannot read snapshot {path}: {exc}") from exc
    except BaseException:
        os.close(fd)
        raise
    opened = OpenSnapshot(index, ids, path, size, fd)
    weakref.finalize(opened, os.close, fd)
    return opened


def _ids_map(fd: int, path: Path, size: int) -> np.ndarray | None:
    """The ids section memory-mapped, or None for a file of the earlier layout (no footer)."""
    if size < FOOTER.size:
        return None
    magic, offset, count = FOOTER.unpack(os.pread(fd, FOOTER.size, size - FOOTER.size))
    if magic != IDS_MAGIC:
        return None
    if offset + count * 8 + FOOTER.size != size:
        raise SnapshotCorruptError(f"snapshot {path} has an inconsistent ids section")
    if count == 0:
        return np.empty(0, dtype=np.int64)
    return np.memmap(path, dtype="<i8", mode="r", offset=offset, shape=(count,))


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

"""The per-process snapshot reader: the active snapshot memory-mapped, an exact delta beside it, exact fallback.

Every process (web, Python API, worker) keeps one ``Served`` per model key; the snapshot's pages (and the exact
fallback's vectors) are memory-mapped files, shared by all processes of a machine through the page cache. At most
once per second a search looks at the newest ``IndexSnapshot`` row (one small query) and fetches embeddings newer
than what it holds (the **delta**, searched exactly). A new version is loaded in a background thread while
searches keep using the old one, then swapped in by replacing one reference. When the snapshot file is missing or
damaged, searches fall back to exact search over the stored vectors (``fallback.py``), the failure is logged at
ERROR, and a rebuild is requested. Before each search the mapped file's size is checked (one ``fstat``): a file
truncated in place under a reader would crash it (SIGBUS) on touching a vanished page, so it is dropped for the
fallback first.

Hits are **not** filtered against the catalogue: a deleted or no-longer-ready image may be returned until the next
compaction. Callers hydrate hits from the database and drop ids without a ``ready`` row (``search`` does).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connections

from core.dispatch import INDEX_BUILD, task_send
from search.state import snapshots_newest_first

from .errors import SnapshotCorruptError, VectorDimensionError
from .exact import Hits, exact_topk, hits_merge
from .fallback import exact_vectors_load
from .storage import OpenSnapshot
from .vectors import VectorSet, stored_vectors, vectors_load

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
REBUILD_REQUEST_SECONDS = 60.0
LATE_COMMIT_SECONDS = 30  # how long an embedding row may take from insert to commit
EXACT_FILTER_MAX = 4096  # allowed-id sets up to this size are scored exactly from their stored vectors
SNAPSHOT_FIELDS = ("id", "version", "file_path", "checksum", "factory", "params", "watermark", "created_at")


@dataclass
class Served:
    """What one process searches for one model: a snapshot (or the exact fallback) plus the delta after it."""

    model_key: str
    version: int | None  # None: exact fallback (no snapshot, or its file is unusable)
    factory: str
    watermark: int
    params: dict[str, Any]
    created_at: Any = None
    opened: OpenSnapshot | None = None  # the memory-mapped snapshot, when serving one
    exact: VectorSet | None = None  # every vector up to ``watermark`` (memory-mapped) when falling back
    broken_version: int | None = None  # the version whose file could not be loaded
    delta: VectorSet | None = None
    checked_at: float = 0.0
    loading_version: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def index(self) -> Any:
        """The faiss index when serving a snapshot (None: exact fallback)."""
        return self.opened.index if self.opened is not None else None

    @property
    def dimension(self) -> int | None:
        if self.index is not None:
            return int(self.index.d)
        for part in (self.exact, self.delta):
            if part is not None and part.dimension:
                return part.dimension
        return None

    @property
    def count(self) -> int:
        main = self.index.ntotal if self.index is not None else (self.exact.count if self.exact else 0)
        return int(main) + (self.delta.count if self.delta else 0)


_SERVED: dict[str, Served] = {}
_SERVED_LOCK = threading.Lock()
_REBUILD_REQUESTED: dict[str, float] = {}


def _latest_row(model_key: str) -> dict[str, Any] | None:
    return snapshots_newest_first(model_key=model_key).values(*SNAPSHOT_FIELDS).first()


def served_snapshot(*, model_key: str) -> Served | None:
    """What this process has in memory for ``model_key`` (None until it has searched that model); read-only."""
    return _SERVED.get(model_key)


def rebuild_request(*, model_key: str, reason: str) -> bool:
    """Ask a worker to rebuild ``model_key``'s snapshot (at most once a minute per process); True if sent."""
    now = time.monotonic()
    if now - _REBUILD_REQUESTED.get(model_key, -math.inf) < REBUILD_REQUEST_SECONDS:
        return False
    _REBUILD_REQUESTED[model_key] = now
    try:
        task_send(INDEX_BUILD, model_key=model_key, force=True)
    except Exception:
        logger.exception("could not request a rebuild of the %s snapshot (%s)", model_key, reason)
        return False
    logger.error("requested a rebuild of the %s snapshot: %s", model_key, reason)
    return True


def _load(model_key: str, row: dict[str, Any] | None) -> Served:
    """A fresh ``Served`` for ``row`` (the newest snapshot row, or None), falling back to exact search."""
    from core.metrics import SNAPSHOT_AGE_SECONDS, SNAPSHOT_VERSION

    from .storage import snapshot_read

    broken = None
    if row is not None:
        try:
            opened = snapshot_read(file_path=row["file_path"], checksum=row["checksum"])
        except SnapshotCorruptError as exc:
            _unusable(model_key, row["version"], exc.message)
            broken = row["version"]
        else:
            if opened.ids is None:  # the earlier layout: nprobe is set on the index itself
                from .kinds import index_params_apply

                index_params_apply(index=opened.index, params=row["params"])
            served = Served(model_key, row["version"], row["factory"], row["watermark"], row["params"],
                            row["created_at"], opened=opened)  # fmt: skip
            SNAPSHOT_VERSION.set(row["version"])
            SNAPSHOT_AGE_SECONDS.set(_age_seconds(row["created_at"]))  # the /metrics collector refreshes both
            logger.info("serving %s snapshot v%s (%s, %d vectors, memory-mapped)", model_key, row["version"],
                        row["factory"], opened.index.ntotal)  # fmt: skip
            return served
    return _fallback(model_key, broken)


def _unusable(model_key: str, version: int, reason: str) -> None:
    logger.error("SNAPSHOT UNUSABLE: %s v%s: %s; searching the stored vectors exactly until it is rebuilt",
                 model_key, version, reason)  # fmt: skip
    rebuild_request(model_key=model_key, reason=reason)


def _fallback(model_key: str, broken: int | None) -> Served:
    exact = exact_vectors_load(model_key=model_key)
    return Served(model_key, None, "exact", exact.last_embedding_id, {}, exact=exact, broken_version=broken)


def _guard(served: Served) -> Served:
    """``served``, or the exact fallback in its place if its mapped file was truncated in place since it opened."""
    if served.opened is None or served.opened.intact():
        return served
    with served.lock:
        current = _SERVED.get(served.model_key)
        if current is not served:
            return current or served
        _unusable(served.model_key, served.version or 0, f"snapshot file {served.opened.path} shrank under the reader")
        fallback = _fallback(served.model_key, served.version)
        _delta_refresh(fallback)
        fallback.checked_at = time.monotonic()
        with _SERVED_LOCK:
            _SERVED[served.model_key] = fallback
        return fallback


def _age_seconds(created: Any) -> float:
    from django.utils import timezone

    return (timezone.now() - created).total_seconds()


def _delta_refresh(served: Served) -> None:
    """Add embeddings newer than the snapshot that ``served`` does not hold yet (one small query), including rows
    committed late with an id below ones already seen (created in the last ``LATE_COMMIT_SECONDS``)."""
    from datetime import timedelta

    from django.utils import timezone

    current = served.delta
    if current is None or current.count == 0:
        seen = current.last_embedding_id if current is not None else served.watermark
        served.delta = vectors_load(model_key=served.model_key, after_id=served.watermark, seen_id=seen,
                                    recent_since=timezone.now() - timedelta(seconds=LATE_COMMIT_SECONDS))  # fmt: skip
        return
    fresh = vectors_load(model_key=served.model_key, after_id=served.watermark, seen_id=current.last_embedding_id,
                         recent_since=timezone.now() - timedelta(seconds=LATE_COMMIT_SECONDS))  # fmt: skip
    new = ~np.isin(fresh.ids, current.ids)  # an image has one embedding per model: its id identifies the row
    if new.any():
        served.delta = VectorSet(
            np.concatenate([current.ids, fresh.ids[new]]),
            np.concatenate([current.vectors, fresh.vectors[new]]),
            max(current.last_embedding_id, fresh.last_embedding_id),
        )


def _swap(model_key: str, row: dict[str, Any], old: Served) -> Served:
    """Load ``row``'s version and make it the served one; if its file is unusable while ``old`` serves a good
    snapshot, keep ``old`` (its delta covers everything since) and remember the broken version (no retry loop)."""
    new = _load(model_key, row)
    if new.index is None and old.index is not None:
        old.broken_version = row["version"]
        return old
    _delta_refresh(new)
    new.checked_at = time.monotonic()
    with _SERVED_LOCK:
        _SERVED[model_key] = new
    return new


def _swap_in_background(model_key: str, row: dict[str, Any], old: Served) -> None:
    def run() -> None:
        try:
            _swap(model_key, row, old)
        except Exception:
            logger.exception(
                "loading %s snapshot v%s failed; still serving the previous one", model_key, row["version"]
            )
        finally:
            old.loading_version = None
            connections.close_all()  # this thread's connections only

    old.loading_version = row["version"]
    threading.Thread(target=run, name=f"snapshot-load-{model_key}", daemon=True).start()


def reader_refresh(*, model_key: str, block: bool = False) -> Served:
    """The ``Served`` for ``model_key``, checked against the database if the last check is over a second old
    (or always with ``block=True``, which also loads a new version in this thread instead of in the background).
    """
    served = _SERVED.get(model_key)
    if served is None:
        with _SERVED_LOCK:
            served = _SERVED.get(model_key)
            if served is None:
                served = _load(model_key, _latest_row(model_key))
                _delta_refresh(served)
                served.checked_at = time.monotonic()
                _SERVED[model_key] = served
                return served
    if not block and time.monotonic() - served.checked_at < REFRESH_SECONDS:
        return served
    lock = served.lock
    if not lock.acquire(blocking=block):
        return served  # another thread is checking right now; the current state is at most a second old
    try:
        row = _latest_row(model_key)
        newest = row["version"] if row else None
        if row is not None and newest not in (served.version, served.broken_version, served.loading_version):
            if block:
                swapped = _swap(model_key, row, served)
                if swapped is not served:
                    return swapped
            else:
                _swap_in_background(model_key, row, served)
        elif newest is None and served.version is not None:
            served = _load(model_key, None)  # snapshot rows removed (model retired): serve exactly
            with _SERVED_LOCK:
                _SERVED[model_key] = served
        elif served.broken_version is not None:
            rebuild_request(model_key=model_key, reason=f"snapshot v{served.broken_version} is unusable")
        _delta_refresh(served)
        served.checked_at = time.monotonic()
        return served
    finally:
        lock.release()


def reader_reset() -> None:
    """Forget every loaded snapshot in this process (the next search reloads); for tests and model removal."""
    with _SERVED_LOCK:
        _SERVED.clear()
    _REBUILD_REQUESTED.clear()


def _main_search(served: Served, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> Hits:
    """Search the snapshot part (or the exact fallback) of ``served``."""
    if served.index is None:
        exact = served.exact
        if exact is None or exact.count == 0:
            return [[] for _ in range(len(queries))]
        if allowed is not None:
            mask = np.isin(exact.ids, allowed)
            return exact_topk(queries=queries, vectors=exact.vectors[mask], ids=exact.ids[mask], k=k)
        return exact_topk(queries=queries, vectors=exact.vectors, ids=exact.ids, k=k)
    from .kinds import index_query

    def rerank_source(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = stored_vectors(model_key=served.model_key, image_ids=candidates.tolist())
        ids = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
        return ids, (np.stack(list(found.values())) if found else np.empty((0, queries.shape[1]), np.float32))

    assert served.opened is not None
    return index_query(index=served.opened.index, params=served.params, queries=queries, k=k,
                       labels=served.opened.ids, allowed=allowed, rerank_source=rerank_source)  # fmt: skip


def index_search(
    *, model_key: str, vectors: np.ndarray, k: int, allowed_ids: Collection[int] | None = None
) -> list[list[tuple[int, float]]]:
    """For each query row, up to ``k`` ``(image_id, inner-product score)``, best first, merged from the active
    snapshot of ``model_key`` and the exact delta of embeddings newer than it. Read-only (may load a snapshot).

    ``allowed_ids`` restricts hits to those images: a small set is scored exactly from its stored vectors, a large
    one by over-fetching from the index and filtering. Hits are not checked against the catalogue (see module
    docstring). Raises ``VectorDimensionError`` if the query dimension differs from the stored vectors'.
    """
    queries = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if k <= 0 or queries.shape[0] == 0:
        return [[] for _ in range(queries.shape[0])]
    served = _guard(reader_refresh(model_key=model_key))
    dimension = served.dimension
    if dimension is not None and queries.shape[1] != dimension:
        raise VectorDimensionError(
            f"query vectors have {queries.shape[1]} dimensions; {model_key} embeddings have {dimension}"
        )
    delta = served.delta
    allowed = None
    if allowed_ids is not None:
        allowed = np.fromiter((int(i) for i in allowed_ids), dtype=np.int64)
        if allowed.size == 0:
            return [[] for _ in range(len(queries))]
        if allowed.size <= EXACT_FILTER_MAX:
            found = stored_vectors(model_key=model_key, image_ids=allowed.tolist())
            if not found:
                return [[] for _ in range(len(queries))]
            ids = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
            return exact_topk(queries=queries, vectors=np.stack(list(found.values())), ids=ids, k=k)
    main = _main_search(served, queries, k, allowed)
    if delta is None or delta.count == 0:
        return main
    if allowed is not None:
        mask = np.isin(delta.ids, allowed)
        newer = exact_topk(queries=queries, vectors=delta.vectors[mask], ids=delta.ids[mask], k=k)
    else:
        newer = exact_topk(queries=queries, vectors=delta.vectors, ids=delta.ids, k=k)
    return hits_merge(primary=main, newer=newer, k=k)

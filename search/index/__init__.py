"""The Faiss index: snapshots built from the ``Embedding`` table, a per-process reader with an exact delta, and
recovery. See docs/index.md. Importing this package does not import faiss."""

from .build import index_build
from .maintenance import compaction_signal, index_compact, index_drift, index_reconcile
from .reader import index_search, reader_refresh, reader_reset, served_snapshot
from .status import index_status, index_status_for_readiness
from .vectors import stored_vectors

__all__ = [
    "compaction_signal",
    "index_build",
    "index_compact",
    "index_drift",
    "index_reconcile",
    "index_search",
    "index_status",
    "index_status_for_readiness",
    "reader_refresh",
    "reader_reset",
    "served_snapshot",
    "stored_vectors",
]

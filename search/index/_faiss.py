"""The one place faiss is imported and configured; imported lazily by the index code."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from types import ModuleType

from django.conf import settings

BATCH_BLAS_THRESHOLD = 16
_blas_lock = threading.Lock()


@functools.cache
def faiss_module() -> ModuleType:
    """faiss, configured once per process: ``SEMSEARCH_INDEX_THREADS`` OpenMP threads (0 = all CPUs, at most 4:
    concurrent web threads already use the cores, and over-subscribed OpenMP slows every one of them)."""
    import faiss

    threads = getattr(settings, "SEMSEARCH_INDEX_THREADS", 0) or min(os.cpu_count() or 1, 4)
    faiss.omp_set_num_threads(threads)
    return faiss


@contextlib.contextmanager
def batch_blas() -> Iterator[ModuleType]:
    """faiss with BLAS for every batch of >= 16 queries, for build-time work (ground truth, recall measurement).

    This build's ``distance_compute_blas_threshold`` is 128000, which sends smaller batches down a ~10x slower
    path; but lowering it for good makes single queries ~50x slower (measured: IVF980 nprobe 4 at 60k vectors,
    0.1 ms -> 16 ms with 2 threads), so it is lowered only around batch work and restored after.
    """
    faiss = faiss_module()
    with _blas_lock:
        previous = faiss.cvar.distance_compute_blas_threshold
        faiss.cvar.distance_compute_blas_threshold = BATCH_BLAS_THRESHOLD
        try:
            yield faiss
        finally:
            faiss.cvar.distance_compute_blas_threshold = previous

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
    """faiss, imported once; every call that may start an OpenMP team sizes it with ``faiss_team``."""
    import faiss

    return faiss


@contextlib.contextmanager
def faiss_team(queries: int) -> Iterator[None]:
    """Size the calling thread's OpenMP team for a faiss call on ``queries`` vectors; restored afterwards.

    Batches (index builds, recall measurement) use ``SEMSEARCH_INDEX_THREADS`` threads (0 = all CPUs, at most 4).
    A web query searches alone: a team buys nothing for one vector, and faiss and torch share one OpenMP runtime,
    where a second thread owning a team makes the runtime stop spinning between operators — that slowed the
    query encoder from 24 to 37 ms (2 cores, ViT-B/32 text tower; see ``search.embeddings.inference``). The
    previous size is restored because it is torch's too when the caller also encodes.
    """
    faiss = faiss_module()
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(_batch_threads() if queries >= BATCH_BLAS_THRESHOLD else 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _batch_threads() -> int:
    return int(settings.SEMSEARCH_INDEX_THREADS) or min(os.cpu_count() or 1, 4)


@contextlib.contextmanager
def batch_blas() -> Iterator[ModuleType]:
    """faiss with BLAS for every batch of >= 16 queries, for build-time work (ground truth, recall measurement).

    This build's ``distance_compute_blas_threshold`` is 128000, which sends smaller batches down a ~10x slower
    path; but lowering it for good makes single queries ~50x slower (measured: IVF980 nprobe 4 at 60k vectors,
    0.1 ms -> 16 ms with 2 threads), so it is lowered only around batch work and restored after.
    """
    faiss = faiss_module()
    with _blas_lock, faiss_team(BATCH_BLAS_THRESHOLD):
        previous = faiss.cvar.distance_compute_blas_threshold
        faiss.cvar.distance_compute_blas_threshold = BATCH_BLAS_THRESHOLD
        try:
            yield faiss
        finally:
            faiss.cvar.distance_compute_blas_threshold = previous

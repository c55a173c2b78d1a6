"""The one place faiss is imported and configured (threads, BLAS threshold); imported lazily by the index code."""

from __future__ import annotations

import functools
import os
from types import ModuleType

from django.conf import settings


@functools.cache
def faiss_module() -> ModuleType:
    """faiss, configured once per process.

    * Threads: ``SEMSEARCH_INDEX_THREADS`` (0 = all CPUs). Several web threads searching at once already use the
      cores, and OpenMP over-subscription makes every one of them slower, so the default is capped at 4.
    * ``distance_compute_blas_threshold``: this faiss build defaults to 128000, which sends every batch of fewer
      queries (ground-truth and recall measurement at build time) down a ~10x slower non-BLAS path.
    """
    import faiss

    threads = getattr(settings, "SEMSEARCH_INDEX_THREADS", 0) or min(os.cpu_count() or 1, 4)
    faiss.omp_set_num_threads(threads)
    faiss.cvar.distance_compute_blas_threshold = 16
    return faiss

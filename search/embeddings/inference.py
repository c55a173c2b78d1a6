"""The inference thread: where a process that answers queries loads and runs its model.

torch runs its operators on an OpenMP team owned by the calling thread. libgomp lets a team's idle threads spin
for a few milliseconds (so the next operator starts at once) only while the process has no more OpenMP threads
than CPUs; as soon as a second thread owns a team — a model loaded on the main thread and queries run on web
request threads, or several request threads encoding — every team in the process falls back to sleeping between
operators, and a short text query pays a wake-up per operator. Measured on 2 cores, random-weight ViT-B/32 text
tower, 5-word queries: 24 ms when one thread loads and runs the model, 36-38 ms on either thread once two threads
have used it (one torch thread per request thread: 35 ms).

So web processes hand all model work for queries — loading included — to one long-lived thread, and request
threads wait for it. Queries are then encoded one at a time per process with every core, which on a small machine
is both the fastest and the fairest order. Batch embedding in Celery workers runs on the worker's own main thread
and never comes here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

THREAD_NAME = "semsearch-inference"

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def on_inference_thread(function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``function(*args, **kwargs)`` on this process's inference thread and return (or raise) its outcome.

    Called from the inference thread itself, it runs inline (so nested calls cannot deadlock).
    """
    if threading.current_thread().name.startswith(THREAD_NAME):
        return function(*args, **kwargs)
    return _inference_executor().submit(function, *args, **kwargs).result()


def start_on_inference_thread(function: Callable[[], object]) -> None:
    """Queue ``function()`` on the inference thread without waiting (a background model load)."""
    _inference_executor().submit(function)


def _forget_executor_after_fork() -> None:
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()  # the parent's thread does not exist in a forked child


os.register_at_fork(after_in_child=_forget_executor_after_fork)


def _inference_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
        return _executor

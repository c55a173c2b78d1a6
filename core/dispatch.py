"""The one seam through which lower layers ask for background work: Celery tasks sent by name.

``images`` and ``search`` never import ``workers`` (it imports them). They send a task by the name declared here,
which ``workers.tasks`` registers under the same constant, so the broker routes and the worker runs it exactly as
if the task object had been called. ``CELERY_TASK_ALWAYS_EAGER`` (debugging) runs the registered task inline.
"""

from __future__ import annotations

import logging
from functools import partial, update_wrapper
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

EMBED_IMAGES = "workers.tasks.embed_images"
INDEX_BUILD = "workers.tasks.index_build"
INDEX_COMPACT = "workers.tasks.index_compact"
INDEX_RECONCILE = "workers.tasks.index_reconcile"
INDEX_MODEL_SWITCH_STEP = "workers.tasks.index_model_switch_step"
ENRICH_OCR = "workers.tasks.enrich_ocr"
ENRICH_TAGS = "workers.tasks.enrich_tags"
ENRICH_TAGS_RECOMPUTE = "workers.tasks.enrich_tags_recompute"


def task_send(name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Enqueue task ``name`` with keyword arguments ``kwargs`` (ids and keys, never objects); raises when the
    broker cannot be reached."""
    from celery import current_app

    if current_app.conf.task_always_eager:
        current_app.loader.import_default_modules()  # registers the autodiscovered tasks in this process
        current_app.tasks[name].apply(kwargs=kwargs)
        return
    current_app.send_task(name, kwargs=kwargs, countdown=countdown)


def task_send_on_commit(name: str, **kwargs: Any) -> None:
    """Enqueue ``name`` once the current transaction commits (at once outside one).

    A broker that is down is logged, not raised (Django's robust ``on_commit``): the rows the task would have
    worked on are still in the database, where the periodic reconcile finds them.
    """
    callback = update_wrapper(partial(task_send, name, **kwargs), task_send)
    transaction.on_commit(callback, robust=True)

"""The seam lower layers enqueue through: task names that the worker registers, eager mode honoured."""

from __future__ import annotations

import pytest

from core import dispatch

NAMES = [dispatch.EMBED_IMAGES, dispatch.INDEX_BUILD, dispatch.INDEX_COMPACT, dispatch.INDEX_RECONCILE,
         dispatch.INDEX_MODEL_SWITCH_STEP]  # fmt: skip


def test_every_dispatched_name_is_a_task_the_worker_registers() -> None:
    from celery import current_app

    current_app.loader.import_default_modules()  # what a worker does at start (autodiscovery)
    assert set(NAMES) <= set(current_app.tasks)


@pytest.mark.django_db
def test_eager_mode_runs_the_named_task_inline() -> None:
    # Given eager mode (debugging) and three stored vectors of a model without a snapshot
    from celery import current_app

    from search.models import IndexSnapshot
    from tests.search.test_search_fixtures import embedding_add, image_make, unit

    for n in range(3):
        embedding_add(image_make(), unit([1.0, n]), model_key="eager-model")
    current_app.conf.task_always_eager = True
    try:
        # When an index build is sent by name
        dispatch.task_send(dispatch.INDEX_BUILD, model_key="eager-model", force=True)
    finally:
        current_app.conf.task_always_eager = False
    # Then it ran here, at once: the snapshot exists
    assert IndexSnapshot.objects.get(model_key="eager-model").vector_count == 3


def test_a_worker_started_without_queues_consumes_every_queue() -> None:
    # Given the app as `celery -A semsearch_site worker` (no --queues) configures it
    from core.queues import QUEUES
    from semsearch_site.celery import app

    # Then every queue a task is routed to is declared, so the worker consumes them all
    assert set(app.amqp.queues) == set(QUEUES)
    assert {app.amqp.router.route({}, name)["queue"].name for name in (dispatch.EMBED_IMAGES, dispatch.INDEX_BUILD,
            dispatch.ENRICH_OCR, "workers.tasks.something_else")} == set(QUEUES)  # fmt: skip

"""Deleting an image while a worker stores its embedding: the delete waits for the worker and cascades, instead of
failing at commit on the foreign key (a 500 that ``bench/load.py`` first hit under mixed load). PostgreSQL only:
SQLite serialises writers, so the race cannot happen there. Services pass."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.db import connection, transaction

from images.models import Image
from search.models import Embedding
from tests.conftest import require_services

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]


@pytest.mark.django_db(transaction=True)
def test_delete_during_embedding_store_cascades_instead_of_failing() -> None:
    require_services()
    from images.services.ingest import image_delete, image_ingest
    from search.services.embedding import _store_batch

    from .test_authorization import _png

    # Given a stored image, and a worker that has stored its embedding but not yet committed
    image = image_ingest(data=_png(4242), filename="race.png", enqueue=False).image
    stored = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with transaction.atomic():
                _store_batch(model_key="race", ids=[image.pk], vectors=np.ones((1, 4), "f4"), mark_ready=True)
                stored.set()
                release.wait(10)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    assert stored.wait(10)
    # When the image is deleted meanwhile (the worker commits a moment later)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    image_delete(image=image)
    thread.join(10)
    # Then the delete waited for the worker, succeeded, and took the new embedding with it
    assert not errors, errors
    assert time.monotonic() - started >= 0.5
    assert not Image.objects.filter(pk=image.pk).exists()
    assert not Embedding.objects.filter(image_id=image.pk).exists()

"""Embedding work with the bundled toy model: failures per image, idempotency, and a worker killed mid-batch."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from images.models import Image, ImageStatus
from search.embeddings.toy_data import random_captioned_pictures
from search.index import index_search, reader_reset
from search.index.maintenance import index_reconcile
from search.models import Embedding
from search.services.embedding import active_model_key, active_model_key_forget, embedding_compute
from tests.conftest import WorkerProcess


@pytest.fixture(autouse=True)
def _toy_model(settings, tmp_path):
    settings.SEMSEARCH_MODEL_ID = "toy"
    settings.SEMSEARCH_MODEL_REVISION = ""
    settings.INDEX_ROOT = tmp_path / "index"
    active_model_key_forget()
    reader_reset()
    yield
    active_model_key_forget()
    reader_reset()


def stored_pictures(n: int, *, seed: int = 0, size: int = 96) -> tuple[list[int], list[bytes]]:
    """``n`` pending images with real PNG files in media storage; returns their ids and bytes."""
    ids, blobs = [], []
    for picture, caption, _ in random_captioned_pictures(n, seed=seed, size=size):
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        name = default_storage.save(f"originals/{digest}.png", ContentFile(data))
        image = Image.objects.create(content_hash=digest, original=name, width=size, height=size, format="PNG",
                                     title=caption)  # fmt: skip
        ids.append(image.id)
        blobs.append(data)
    return ids, blobs


def broken_image(name: str, data: bytes | None) -> int:
    digest = hashlib.sha256(name.encode()).hexdigest()
    stored = default_storage.save(f"originals/{digest}.png", ContentFile(data)) if data is not None else f"gone/{name}"
    return Image.objects.create(content_hash=digest, original=stored, width=9, height=9, format="PNG").id


@pytest.mark.django_db
def test_a_batch_embeds_good_images_marks_bad_ones_failed_and_is_idempotent():
    from search.embeddings import get_encoder

    # Given five good pictures, one undecodable file and one whose file is gone
    good, blobs = stored_pictures(5, seed=1)
    undecodable = broken_image("junk", b"this is not a picture")
    missing = broken_image("missing", None)
    # When the batch is embedded
    result = embedding_compute(image_ids=[*good, undecodable, missing])
    # Then the good ones are ready with one embedding each, and the bad ones failed with a reason
    key = active_model_key()
    assert (result["model_key"], result["embedded"], result["failed"]) == (key, 5, 2)
    assert set(Image.objects.filter(status=ImageStatus.READY).values_list("id", flat=True)) == set(good)
    failed = dict(Image.objects.filter(status=ImageStatus.FAILED).values_list("id", "failure_reason"))
    assert set(failed) == {undecodable, missing}
    assert all(failed.values())
    assert Embedding.objects.filter(model_key=key).count() == 5
    # And running it again embeds nothing twice
    again = embedding_compute(image_ids=good)
    assert (again["embedded"], again["skipped"]) == (0, 5)
    assert Embedding.objects.filter(model_key=key).count() == 5
    # And a just-embedded image is found at once (through the delta: no snapshot exists)
    query = get_encoder("toy").encode_images([blobs[2]])
    assert index_search(model_key=key, vectors=query, k=1)[0][0][0] == good[2]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_leaves_every_image_ready_with_exactly_one_embedding(settings):
    settings.SEMSEARCH_PENDING_REQUEUE_MINUTES = 0
    # Given 60 pending images and a worker embedding two at a time
    ids, _ = stored_pictures(60, seed=2, size=160)
    env = {"SEMSEARCH_MODEL_ID": "toy", "SEMSEARCH_EMBED_BATCH_SIZE": "2", "CELERY_VISIBILITY_TIMEOUT": "5"}
    worker = WorkerProcess("embed,index,default", env)
    worker.start()
    try:
        from workers.tasks import embed_images

        embed_images.delay(image_ids=ids)
        # When the worker is SIGKILLed once the first batches are committed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Embedding.objects.count() < 2:
            time.sleep(0.02)
        worker.kill()
    finally:
        worker.stop()
    done_at_kill = Embedding.objects.count()
    assert 2 <= done_at_kill < len(ids), "the worker must die in the middle of the batch"
    # And a new worker starts (the broker redelivers the unacknowledged task; reconcile re-enqueues what is pending)
    restarted = WorkerProcess("embed,index,default", env)
    restarted.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and Image.objects.filter(status=ImageStatus.PENDING).exists():
            index_reconcile()
            time.sleep(1)
    finally:
        restarted.stop()
    # Then every image is ready, with exactly one embedding for the model
    key = active_model_key()
    assert set(Image.objects.values_list("status", flat=True)) == {ImageStatus.READY}
    per_image = list(Embedding.objects.filter(model_key=key).values_list("image_id", flat=True))
    assert sorted(per_image) == sorted(ids)

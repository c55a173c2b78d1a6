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
from search.services.embedding import embedding_compute
from search.state import active_model_key, active_model_key_forget
from tests.conftest import WorkerProcess
from tests.workers.test_index_tasks import broker_purge


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
    broker_purge()
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


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_model_switch_on_a_real_worker_keeps_search_answering_and_activates_only_when_complete(settings, tmp_path):
    import shutil

    from django.conf import settings as live_settings

    from search.embeddings.loading import resolve_source
    from search.index import index_build, stored_vectors
    from search.models import IndexSnapshot, SearchModel, SearchModelState
    from search.services.models import model_switch_start

    # Given 12 images embedded and indexed with the current model
    ids, _ = stored_pictures(12, seed=3)
    old_key = active_model_key()
    assert embedding_compute(image_ids=ids)["embedded"] == 12
    index_build(model_key=old_key)
    # And a second model: the same weights in another folder, so it has another key
    copy = tmp_path / "second-model"
    shutil.copytree(resolve_source(live_settings.SEMSEARCH_MODEL_ID).location, copy)
    broker_purge()
    worker = WorkerProcess("embed,index,default", {"SEMSEARCH_MODEL_ID": live_settings.SEMSEARCH_MODEL_ID})
    worker.start()
    try:
        # When the switch starts, and searches keep coming while the worker re-embeds in the background
        new_key = model_switch_start(model_id=str(copy)).model_key
        assert new_key != old_key
        seen_keys = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            active_model_key_forget()
            key = active_model_key()
            seen_keys.append(key)
            if key == new_key:
                # Then at the moment it becomes active, the new model covers every image and has its snapshot
                assert Embedding.objects.filter(model_key=new_key).count() == 12
                assert IndexSnapshot.objects.filter(model_key=new_key, vector_count=12).exists()
            query = stored_vectors(model_key=key, image_ids=[ids[4]])[ids[4]]
            hits = index_search(model_key=key, vectors=query, k=3)
            assert hits[0][0][0] == ids[4]  # every search answers, with whichever model is active
            if key == new_key:
                break
            time.sleep(0.5)
    finally:
        worker.stop()
    # And the switch happened once, old to new, and the old model's embeddings were kept
    assert seen_keys[0] == old_key
    assert seen_keys[-1] == new_key
    assert SearchModel.objects.get(model_key=old_key).state == SearchModelState.RETIRED
    assert Embedding.objects.filter(model_key=old_key).count() == 12

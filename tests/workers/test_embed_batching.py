"""Full batches from single uploads: a task fills its batch with other pending images, and two real workers
sharing a stream of single-image uploads (service mode) embed every image exactly once."""

from __future__ import annotations

import io
import re
import time

import pytest

from images.models import Image, ImageStatus
from images.services import image_ingest
from search.embeddings.toy_data import random_captioned_pictures
from search.models import Embedding
from search.services import embedding
from search.services.embedding import CLAIM_BATCHES, active_model_key, embedding_compute
from tests.conftest import WorkerProcess, require_services
from tests.workers.test_embed_tasks import _toy_model, stored_pictures  # noqa: F401 (autouse fixture)
from tests.workers.test_index_tasks import broker_purge

EMBEDDED = re.compile(r"succeeded in .*'embedded': (\d+)")


@pytest.mark.django_db
def test_a_task_holding_one_id_fills_its_batch_with_other_pending_images(settings, monkeypatch):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 4
    monkeypatch.setattr(embedding, "DRAIN_SECONDS", 0.0)  # this test is about one claim; draining is the next one
    # Given 20 pending images, one of them failed earlier (never refilled)
    ids, _ = stored_pictures(20, seed=11)
    Image.objects.filter(pk=ids[0]).update(status=ImageStatus.FAILED, failure_reason="earlier")
    # When a task for the newest image alone runs
    result = embedding_compute(image_ids=[ids[-1]])
    # Then one full claim (CLAIM_BATCHES batches of 4) was embedded: that image plus the oldest pending ones
    claim = 4 * CLAIM_BATCHES
    assert (result["embedded"], result["filled"]) == (claim, claim - 1)
    embedded = set(Embedding.objects.filter(model_key=active_model_key()).values_list("image_id", flat=True))
    assert embedded == {ids[-1], *ids[1:claim]}
    assert set(Image.objects.filter(status=ImageStatus.READY).values_list("id", flat=True)) == embedded
    # And the tasks of the filled-in images find nothing left to do
    again = embedding_compute(image_ids=ids[1:claim])
    assert (again["embedded"], again["skipped"]) == (0, claim - 1)


@pytest.mark.django_db
def test_a_task_drains_the_backlog_claim_after_claim_then_stops(settings, monkeypatch):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 4
    claims = []
    original = embedding._embed_claimed
    monkeypatch.setattr(embedding, "_embed_claimed", lambda **kw: claims.append(len(kw["images"])) or original(**kw))
    # Given 40 pending images, one of them failed earlier
    ids, _ = stored_pictures(40, seed=13)
    Image.objects.filter(pk=ids[0]).update(status=ImageStatus.FAILED, failure_reason="earlier")
    # When a task for one image runs
    result = embedding_compute(image_ids=[ids[5]])
    # Then it went on claiming while claims came back full, and stopped at the first short one
    claim = 4 * CLAIM_BATCHES
    assert claims == [claim, claim, 39 - 2 * claim]
    assert (result["embedded"], result["filled"]) == (39, 38)
    assert not Image.objects.filter(status=ImageStatus.PENDING).exists()
    assert Image.objects.get(pk=ids[0]).status == ImageStatus.FAILED
    # And with nothing waiting, a task for an image already embedded returns at once
    assert embedding_compute(image_ids=[ids[5]])["embedded"] == 0
    assert len(claims) == 3


def _pngs(count: int, seed: int):
    for picture, caption, _ in random_captioned_pictures(count, seed=seed, size=32):
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        yield buffer.getvalue(), caption


@pytest.mark.worker
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_two_workers_embed_1000_single_image_uploads_each_exactly_once(settings):
    require_services()
    # Given two real workers on the embed queue (PostgreSQL, Redis)
    broker_purge()
    env = {"SEMSEARCH_MODEL_ID": "toy", "SEMSEARCH_EMBED_BATCH_SIZE": "16", "LOG_FORMAT": "text"}
    workers = [WorkerProcess("embed", env), WorkerProcess("embed", env)]
    for worker in workers:
        worker.start()
    try:
        # When 1,000 pictures are uploaded one at a time (each its own commit and task)
        ids = [image_ingest(data=data, title=caption).image.pk for data, caption in _pngs(1000, seed=12)]
        # Then every image ends ready
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and Image.objects.filter(status=ImageStatus.PENDING).exists():
            time.sleep(0.5)
        time.sleep(1.0)  # the last task results reach the logs
    finally:
        for worker in workers:
            worker.stop()
    assert set(Image.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ImageStatus.READY}
    # And the model saw each image exactly once: the workers' task results add up to 1,000 embedded
    per_worker = [sum(int(n) for line in w.log for n in EMBEDDED.findall(line)) for w in workers]
    assert sum(per_worker) == 1000, per_worker
    assert all(per_worker), f"one worker embedded nothing: {per_worker}"
    key = active_model_key()
    assert sorted(Embedding.objects.filter(model_key=key).values_list("image_id", flat=True)) == sorted(ids)

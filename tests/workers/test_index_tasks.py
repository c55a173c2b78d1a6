"""Index maintenance tasks: single-flight builds, compaction, reconcile, model switch, and a real worker via Redis."""

from __future__ import annotations

import math
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from core.queues import queue_depths
from images.models import Image, ImageStatus
from search.index import index_build, index_search, reader_reset
from search.index.build import build_lock_name
from search.index.locks import maintenance_lock
from search.index.maintenance import compaction_signal, index_reconcile
from search.index.storage import TEMP_MARKER, model_folder_name
from search.models import Embedding, IndexSnapshot, SearchModel, SearchModelState
from search.services.models import model_switch_step
from search.state import active_model_key, active_model_key_forget
from tests.conftest import require_services
from tests.search.test_index import KEY, clustered, exact, images_with_vectors

NEW_KEY = "synthetic-model-v2@test"


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.INDEX_ROOT = tmp_path / "index"
    reader_reset()
    active_model_key_forget()
    yield
    reader_reset()
    active_model_key_forget()


@pytest.fixture
def active_synthetic_model(db):
    return SearchModel.objects.create(model_key=KEY, model_id="synthetic", state=SearchModelState.ACTIVE)


@pytest.mark.django_db
def test_a_build_while_another_holds_the_lock_returns_busy_and_writes_nothing():
    # Given stored embeddings and another builder holding the lock
    images_with_vectors(clustered(50))
    with maintenance_lock(name=build_lock_name(KEY)) as held:
        assert held
        # When a second build starts
        result = index_build(model_key=KEY)
        with maintenance_lock(name=build_lock_name(KEY)) as second:
            # Then it neither waits nor builds, and nobody else gets the lock
            assert not second
    assert result["status"] == "busy"
    assert not IndexSnapshot.objects.exists()
    # And once released, a build goes ahead
    assert index_build(model_key=KEY)["status"] == "built"


@pytest.mark.django_db
def test_compaction_is_signalled_once_when_the_delta_passes_the_threshold(settings):
    # Given a snapshot and a threshold of 20 embeddings
    settings.SEMSEARCH_DELTA_COMPACT_THRESHOLD = 20
    images_with_vectors(clustered(30))
    index_build(model_key=KEY)
    images_with_vectors(clustered(19, seed=1), start=100)
    # Then below the threshold nothing is signalled
    assert not compaction_signal(model_key=KEY)
    # When the delta reaches it, one signal is given for a burst of batches, not one per batch
    images_with_vectors(clustered(1, seed=2), start=200)
    assert compaction_signal(model_key=KEY)
    assert not compaction_signal(model_key=KEY)
    # And the compaction task folds the delta into a new snapshot
    from workers.tasks import index_compact

    result = index_compact.apply(kwargs={"model_key": KEY}).get()
    assert (result["status"], result["version"], result["count"]) == ("built", 2, 50)


@pytest.mark.django_db
def test_reconcile_requeues_stale_pending_and_unfindable_ready_images_once(settings, active_synthetic_model):
    # Given a pending image untouched for longer than the requeue delay, a fresh pending one,
    # and a ready image without an embedding for the active model
    settings.SEMSEARCH_PENDING_REQUEUE_MINUTES = 5
    [stale, fresh, unindexed] = images_with_vectors(clustered(3), key="some-other-model")
    Image.objects.filter(id__in=[stale, fresh]).update(status=ImageStatus.PENDING)
    Image.objects.filter(id=stale).update(updated_at=timezone.now() - timedelta(minutes=6))
    before = queue_depths().get("embed", 0)
    # When reconcile runs
    report = index_reconcile()
    # Then the stale and the unfindable images were sent to the embed queue, the fresh one not
    assert report["requeued_pending"] == 1
    assert report["requeued_unindexed"] == 1
    assert queue_depths().get("embed", 0) == before + 2
    # And running it again right away does not enqueue them a second time
    assert index_reconcile()["requeued_pending"] == 0
    assert not Image.objects.filter(id=unindexed, status=ImageStatus.PENDING).exists()


@pytest.mark.django_db
def test_reconcile_builds_a_missing_snapshot_repairs_a_corrupt_one_and_removes_debris(active_synthetic_model):
    # Given embeddings of the active model and no snapshot
    vectors = clustered(120, seed=3)
    ids = images_with_vectors(vectors)
    # When reconcile runs, it builds the first snapshot
    assert index_reconcile()["build"]["version"] == 1
    # Given the file is then corrupted and a stale temp file lies beside it
    snapshot = IndexSnapshot.objects.get()
    path = Path(django_settings.INDEX_ROOT) / snapshot.file_path
    path.write_bytes(b"garbage" + path.read_bytes()[7:])
    debris = path.with_name(f"v000009.faiss{TEMP_MARKER}1-dead")
    debris.write_bytes(b"half a snapshot")
    # When reconcile runs again
    report = index_reconcile()
    # Then it rebuilt from the database (clearing the debris) and searches are served by the new version
    assert report["build"]["version"] == 2
    assert not debris.exists()
    hits = index_search(model_key=KEY, vectors=vectors[4], k=5)
    assert [i for i, _ in hits[0]] == exact(vectors, ids, vectors[4], 5)
    # And a temp file left by a writer that died an hour ago is removed by the next run, without a rebuild
    debris.write_bytes(b"half a snapshot")
    os.utime(debris, (time.time() - 7200, time.time() - 7200))
    report = index_reconcile()
    assert "build" not in report
    assert report["pruned"] == [f"{model_folder_name(KEY)}/{debris.name}"]
    assert index_reconcile()["pruned"] == []


@pytest.mark.django_db
def test_model_switch_searches_throughout_and_activates_only_when_complete(settings, active_synthetic_model):
    settings.SEMSEARCH_PENDING_REQUEUE_MINUTES = 5
    # Given 40 images served by the active model, and a new model registered for the switch
    old_vectors = clustered(40, seed=4)
    ids = images_with_vectors(old_vectors)
    index_build(model_key=KEY)
    SearchModel.objects.create(model_key=NEW_KEY, model_id="synthetic-2", state=SearchModelState.BUILDING)
    before = queue_depths().get("embed", 0)
    # When the switch steps while nothing is embedded with the new model yet
    step = model_switch_step()
    # Then it enqueues re-embedding of all 40 images (once, in tasks of a batch each), and search still uses the
    # old model
    assert step == {"status": "embedding", "model_key": NEW_KEY, "missing": 40, "enqueued": 40}
    assert queue_depths().get("embed", 0) == before + math.ceil(40 / django_settings.SEMSEARCH_EMBED_BATCH_SIZE)
    assert model_switch_step()["enqueued"] == 0
    assert active_model_key() == KEY
    assert index_search(model_key=KEY, vectors=old_vectors[0], k=1)[0][0][0] == ids[0]
    # When half the images have new embeddings
    new_vectors = clustered(40, seed=5)
    rows = [Embedding(image_id=i, model_key=NEW_KEY, dimension=v.size, vector=v.tobytes()) for i, v in
            zip(ids, new_vectors, strict=True)]  # fmt: skip
    Embedding.objects.bulk_create(rows[:20])
    # Then the switch is still incomplete and the old model still serves
    assert model_switch_step()["missing"] == 20
    assert active_model_key() == KEY
    assert not IndexSnapshot.objects.filter(model_key=NEW_KEY).exists()
    # When the rest arrive, one step builds the new snapshot and activates it
    Embedding.objects.bulk_create(rows[20:])
    assert model_switch_step() == {"status": "activated", "model_key": NEW_KEY}
    # Then the new model serves from its own snapshot, and the old model's embeddings are kept
    assert active_model_key() == NEW_KEY
    assert IndexSnapshot.objects.get(model_key=NEW_KEY).vector_count == 40
    assert SearchModel.objects.get(model_key=KEY).state == SearchModelState.RETIRED
    assert Embedding.objects.filter(model_key=KEY).count() == 40
    assert index_search(model_key=NEW_KEY, vectors=new_vectors[9], k=1)[0][0][0] == ids[9]
    assert model_switch_step() == {"status": "idle"}


def broker_purge() -> None:
    """Drop messages earlier tests left in the queues (e.g. rebuild requests), so a worker started now only runs
    what the test sends."""
    from core.queues import QUEUES

    url = django_settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).delete(*QUEUES)
    else:
        for message in Path(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).glob("*.msg"):
            message.unlink(missing_ok=True)


@pytest.fixture
def service_worker(request):
    """A real worker, in service mode only (skips before paying for the worker's start-up otherwise)."""
    require_services()
    broker_purge()
    return request.getfixturevalue("celery_worker_process")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_task_sent_through_redis_runs_on_a_real_worker_and_its_effect_is_in_postgresql(service_worker):
    from django.db import connection

    assert connection.vendor == "postgresql"
    # Given stored embeddings committed to PostgreSQL
    images_with_vectors(clustered(80, seed=6))
    # When an index build is sent through the Redis broker
    from workers.tasks import index_build as build_task

    build_task.delay(model_key=KEY)
    # Then a separate worker process builds it, and the snapshot row appears in PostgreSQL
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not IndexSnapshot.objects.filter(model_key=KEY).exists():
        time.sleep(0.2)
    snapshot = IndexSnapshot.objects.get(model_key=KEY)
    assert (snapshot.vector_count, snapshot.factory) == (80, "Flat")
    service_worker.wait_for("workers.tasks.index_build", timeout=10)


def test_a_redis_build_lock_outlives_its_ttl_while_its_holder_runs(monkeypatch):
    require_services()
    from search.index import locks

    # Given a Redis lock whose TTL (1 s) is far shorter than the work done under it
    monkeypatch.setattr(locks, "REDIS_LOCK_TTL_S", 1)
    monkeypatch.setattr(locks, "REDIS_LOCK_RENEW_S", 0.3)
    with maintenance_lock(name="ttl-test") as held:
        assert held
        # When the holder runs for more than twice the TTL (as a build outlasting the visibility timeout would)
        time.sleep(2.5)
        # Then the lock is still held: a redelivered copy of the task cannot start beside it
        with maintenance_lock(name="ttl-test") as second:
            assert not second
    # And once released it is free at once
    with maintenance_lock(name="ttl-test") as again:
        assert again

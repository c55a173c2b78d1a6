"""Index recovery: a writer killed mid-file, corrupt/missing/truncated snapshots, deleted images, version swaps."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings

from core.queues import queue_depths
from images.models import Image
from search.index import index_build, index_search, reader_refresh, reader_reset
from search.index.maintenance import index_compact
from search.index.storage import TEMP_MARKER, model_folder_name
from search.models import IndexSnapshot
from tests.conftest import ROOT, WorkerProcess
from tests.search.test_index import KEY, clustered, exact, images_with_vectors

KILLED_WRITER = """
import sys, time
import django
django.setup()
import search.index.storage as storage

original = storage._write_chunk

def stalled(handle, hasher, data):
    original(handle, hasher, data)
    handle.flush()
    print("WRITING", flush=True)
    time.sleep(120)

storage._write_chunk = stalled
import search.index.locks as locks

locks.REDIS_LOCK_TTL_S = 3  # service mode: the dead writer's Redis lock must expire within the test
from search.index import index_build
index_build(model_key=sys.argv[1], force=True)
"""


@pytest.fixture(autouse=True)
def _index_in_tmp(settings, tmp_path):
    settings.INDEX_ROOT = tmp_path / "index"
    reader_reset()
    yield
    reader_reset()


@pytest.mark.django_db(transaction=True)
def test_a_writer_killed_mid_file_leaves_the_previous_version_loadable_and_active(tmp_path):
    # Given snapshot v1 and ten embeddings added since
    vectors = clustered(400, seed=11)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    new_ids = images_with_vectors(clustered(10, seed=12), start=5000)
    # When another process starts writing v2 and is killed with SIGKILL half-way through the file
    env = WorkerProcess("", {})._env()
    env.update(SEMSEARCH_STORAGE_ROOT=str(tmp_path), DJANGO_SETTINGS_MODULE="semsearch_site.settings")
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, KEY], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert writer.stdout is not None
        output = []
        for line in writer.stdout:
            output.append(line)
            if "WRITING" in line:
                break
        assert "WRITING" in "".join(output), "".join(output)
        writer.kill()
    finally:
        writer.kill()
        writer.wait(timeout=10)
    # Then only a partial temp file was left; v1 is still the newest version and loads
    folder = Path(django_settings.INDEX_ROOT) / model_folder_name(KEY)
    assert [p.name for p in folder.iterdir() if TEMP_MARKER in p.name]
    assert not (folder / "v000002.faiss").exists()
    assert list(IndexSnapshot.objects.values_list("version", flat=True)) == [1]
    served = reader_refresh(model_key=KEY, block=True)
    assert served.version == 1
    assert served.index is not None
    # And searches answer from v1 plus the delta (the embeddings the killed build was folding in)
    hits = index_search(model_key=KEY, vectors=vectors[3], k=5)
    assert [i for i, _ in hits[0]] == exact(np.concatenate([vectors, clustered(10, seed=12)]), ids + new_ids,
                                            vectors[3], 5)  # fmt: skip
    # And once the dead writer's lock has lapsed (a file lock dies with its process; a Redis lock within its TTL),
    # the next build clears the debris and writes v2
    deadline = time.monotonic() + 15
    result = index_build(model_key=KEY)
    while result["status"] == "busy" and time.monotonic() < deadline:
        time.sleep(0.5)
        result = index_build(model_key=KEY)
    assert result["version"] == 2
    assert not [p.name for p in folder.iterdir() if TEMP_MARKER in p.name]


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing"])
@pytest.mark.django_db
def test_a_damaged_snapshot_is_detected_searched_exactly_and_rebuilt(damage, caplog):
    # Given snapshot v1 of 300 vectors
    vectors = clustered(300, seed=13)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    path = Path(django_settings.INDEX_ROOT) / IndexSnapshot.objects.get().file_path
    # When its file is damaged and a process (re)loads it
    if damage == "flipped":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    else:
        path.unlink()
    before = queue_depths().get("index", 0)
    with caplog.at_level(logging.ERROR, logger="search.index.reader"):
        hits = index_search(model_key=KEY, vectors=vectors[:2], k=5)
    # Then searches still answer, exactly, from the stored vectors
    for row in range(2):
        assert [i for i, _ in hits[row]] == exact(vectors, ids, vectors[row], 5)
    served = reader_refresh(model_key=KEY)
    assert served.version is None
    assert served.broken_version == 1
    # And the failure was logged loudly and a rebuild was sent to the index queue
    assert any("SNAPSHOT UNUSABLE" in r.getMessage() for r in caplog.records)
    assert queue_depths().get("index", 0) == before + 1
    # When the worker runs that rebuild, v2 is served and the fallback ends
    from workers.tasks import index_build as build_task

    assert build_task.apply(kwargs={"model_key": KEY, "force": True}).get()["version"] == 2
    served = reader_refresh(model_key=KEY, block=True)
    assert served.version == 2
    assert served.index is not None
    assert [i for i, _ in index_search(model_key=KEY, vectors=vectors[0], k=5)[0]] == exact(vectors, ids, vectors[0], 5)


@pytest.mark.django_db
def test_a_deleted_image_disappears_from_the_index_at_compaction(settings):
    # Given a snapshot, and an image deleted after it was built
    vectors = clustered(200, seed=14)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    Image.objects.filter(id=ids[7]).delete()
    # Then the catalogue no longer has it (search hydration drops it: index hits are not filtered in between)
    raw = {i for i, _ in index_search(model_key=KEY, vectors=vectors[7], k=3)[0]}
    assert ids[7] in raw
    assert not Image.objects.filter(id__in=raw & {ids[7]}).exists()
    # When compaction runs (one orphan is enough for a small catalogue), it is gone from the index too
    assert index_compact(model_key=KEY)["status"] == "built"
    reader_refresh(model_key=KEY, block=True)
    hits = index_search(model_key=KEY, vectors=vectors[7], k=10)
    assert ids[7] not in {i for i, _ in hits[0]}
    assert IndexSnapshot.objects.order_by("-version").first().vector_count == 199


@pytest.mark.django_db(transaction=True)
def test_a_new_version_is_swapped_in_without_blocking_searches():
    # Given a process serving v1
    vectors = clustered(300, seed=15)
    images_with_vectors(vectors)
    index_build(model_key=KEY)
    assert reader_refresh(model_key=KEY).version == 1
    # When v2 is built elsewhere and searches keep coming
    images_with_vectors(clustered(5, seed=16), start=9000)
    index_build(model_key=KEY)
    deadline = time.monotonic() + 10
    versions = set()
    while time.monotonic() < deadline:
        hits = index_search(model_key=KEY, vectors=vectors[0], k=3)
        assert len(hits[0]) == 3  # every search answers, before, during and after the swap
        versions.add(reader_refresh(model_key=KEY).version)
        if 2 in versions:
            break
        time.sleep(0.05)
    # Then the new version was noticed within a couple of seconds and swapped in
    assert versions >= {1, 2} or versions == {2}
    assert reader_refresh(model_key=KEY).version == 2


@pytest.mark.django_db
def test_a_broken_new_version_leaves_the_good_one_in_service(caplog):
    # Given a process serving v1
    vectors = clustered(150, seed=17)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    assert reader_refresh(model_key=KEY).version == 1
    # When v2 is recorded but its file is damaged before this process loads it
    more = clustered(3, seed=18)
    more_ids = images_with_vectors(more, start=7000)
    index_build(model_key=KEY)
    path = Path(django_settings.INDEX_ROOT) / IndexSnapshot.objects.get(version=2).file_path
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level(logging.ERROR, logger="search.index.reader"):
        served = reader_refresh(model_key=KEY, block=True)
        again = reader_refresh(model_key=KEY, block=True)
    # Then v1 keeps serving (with the newer embeddings through its delta), v2 is not retried every second
    assert (served.version, served.broken_version, served.index is not None) == (1, 2, True)
    assert again is served
    assert sum("SNAPSHOT UNUSABLE" in r.getMessage() for r in caplog.records) == 1
    hits = index_search(model_key=KEY, vectors=more[1], k=3)
    assert [i for i, _ in hits[0]] == exact(np.concatenate([vectors, more]), ids + more_ids, more[1], 3)

"""The snapshot layout: memory-mapped opening, the ids section, the shared exact-fallback file, files changing under a
serving process, earlier-layout snapshots, and the plan of the compressed tier at 10M."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings

from search.index import index_build, index_search, reader_refresh, reader_reset
from search.index.fallback import FOLDER
from search.index.kinds import index_plan
from search.index.storage import FOOTER, IDS_MAGIC, file_sha256, model_folder_name, snapshot_read
from search.models import Embedding, IndexSnapshot
from tests.search.test_index import DIM, KEY, clustered, exact, images_with_vectors


@pytest.fixture(autouse=True)
def _index_in_tmp(settings, tmp_path):
    settings.INDEX_ROOT = tmp_path / "index"
    reader_reset()
    yield
    reader_reset()


def mapped(path: Path) -> bool:
    """Whether this process maps ``path`` (memory-mapped, not read into its own memory)."""
    return str(path) in Path("/proc/self/maps").read_text()


def snapshot_path(version: int = 1) -> Path:
    return Path(django_settings.INDEX_ROOT) / IndexSnapshot.objects.get(version=version).file_path


@pytest.mark.django_db
def test_a_published_snapshot_carries_its_image_ids_and_opens_memory_mapped():
    # Given a snapshot of 400 vectors
    vectors = clustered(400, seed=21)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    path = snapshot_path()
    # Then the file ends with the ids section: every image id, ascending, after the index
    magic, offset, count = FOOTER.unpack(path.read_bytes()[-FOOTER.size :])
    assert (magic, count) == (IDS_MAGIC, 400)
    assert offset % 4096 == 0
    # When a reader opens it (checksum verified first)
    row = IndexSnapshot.objects.get()
    opened = snapshot_read(file_path=row.file_path, checksum=row.checksum)
    # Then the index and the ids are mappings of the file, labels are positions, ids map them to images
    assert mapped(path)
    assert isinstance(opened.ids, np.memmap)
    assert opened.ids.tolist() == sorted(ids)
    assert opened.index.ntotal == 400
    assert opened.intact()
    # And searches through the reader answer with image ids, exactly
    hits = index_search(model_key=KEY, vectors=vectors[7], k=5)
    assert [i for i, _ in hits[0]] == exact(vectors, ids, vectors[7], 5)


@pytest.mark.django_db
def test_the_exact_fallback_maps_one_shared_vector_file_instead_of_loading_the_vectors(caplog):
    # Given stored embeddings and no snapshot
    vectors = clustered(300, seed=22)
    ids = images_with_vectors(vectors)
    # When a process searches, it falls back to exact search over a vector file it writes once
    with caplog.at_level(logging.WARNING, logger="search.index.fallback"):
        hits = index_search(model_key=KEY, vectors=vectors[:2], k=5)
    folder = Path(django_settings.INDEX_ROOT) / model_folder_name(KEY) / FOLDER
    [vector_file] = folder.glob("*.f32")
    served = reader_refresh(model_key=KEY)
    # Then the vectors are a read-only mapping of that file, and the answers are exact
    assert isinstance(served.exact.vectors, np.memmap)
    assert mapped(vector_file)
    assert vector_file.stat().st_size == 300 * DIM * 4
    assert sum("wrote the exact fallback vectors" in r.getMessage() for r in caplog.records) == 1
    for row in range(2):
        assert [i for i, _ in hits[row]] == exact(vectors, ids, vectors[row], 5)
    # When another process (here: this one, forgetting what it had) falls back at the same watermark
    written = vector_file.stat().st_mtime_ns
    reader_reset()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="search.index.fallback"):
        again = index_search(model_key=KEY, vectors=vectors[:2], k=5)
    # Then it maps the same file without writing it again
    assert again == hits
    assert vector_file.stat().st_mtime_ns == written
    assert not any("wrote the exact fallback vectors" in r.getMessage() for r in caplog.records)
    # And once a snapshot is built the fallback file is removed (a process still mapping it keeps reading it)
    index_build(model_key=KEY)
    assert not list(folder.glob("*.f32"))
    assert [i for i, _ in index_search(model_key=KEY, vectors=vectors[0], k=5)[0]] == exact(vectors, ids, vectors[0], 5)


@pytest.mark.django_db
def test_a_snapshot_truncated_in_place_under_a_serving_process_is_dropped_for_the_fallback(caplog):
    # Given a process serving snapshot v1 from its mapping
    vectors = clustered(300, seed=23)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    assert reader_refresh(model_key=KEY).index is not None
    # When the file is truncated in place (not replaced: the same inode the process maps)
    path = snapshot_path()
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 3)
    with caplog.at_level(logging.ERROR, logger="search.index.reader"):
        hits = index_search(model_key=KEY, vectors=vectors[:2], k=5)
    # Then the next search notices before touching the vanished pages, and answers exactly from the stored vectors
    for row in range(2):
        assert [i for i, _ in hits[row]] == exact(vectors, ids, vectors[row], 5)
    served = reader_refresh(model_key=KEY)
    assert (served.version, served.broken_version) == (None, 1)
    assert any("SNAPSHOT UNUSABLE" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_a_process_keeps_searching_its_mapped_version_while_newer_ones_replace_and_prune_its_file(monkeypatch):
    # Given a process serving v1, which will not look for a newer version for now
    vectors = clustered(300, seed=24)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    assert reader_refresh(model_key=KEY).version == 1
    v1 = snapshot_path()
    monkeypatch.setattr("search.index.reader.REFRESH_SECONDS", 3600)
    # When two more versions are published, and v1's file is pruned (the last two versions are kept)
    more = clustered(4, seed=25)
    more_ids = images_with_vectors(more, start=8000)
    index_build(model_key=KEY, force=True)
    index_build(model_key=KEY, force=True)
    assert not v1.exists()
    # Then its searches still answer from the mapping of the deleted file (the inode lives until unmapped)
    served = reader_refresh(model_key=KEY)
    assert served.version == 1
    assert served.opened.intact()
    assert [i for i, _ in index_search(model_key=KEY, vectors=vectors[3], k=5)[0]] == exact(vectors, ids, vectors[3], 5)
    # And when it next checks, it swaps to v3, which holds the newer embeddings too
    swapped = reader_refresh(model_key=KEY, block=True)
    assert swapped.version == 3
    everything = np.concatenate([vectors, more])
    assert [i for i, _ in index_search(model_key=KEY, vectors=more[1], k=3)[0]] == exact(
        everything, ids + more_ids, more[1], 3
    )


@pytest.mark.django_db
def test_a_snapshot_of_the_earlier_layout_still_opens_and_searches():
    import faiss

    # Given a snapshot written before the ids section existed (IndexIDMap2: labels are image ids)
    vectors = clustered(200, seed=26)
    ids = images_with_vectors(vectors)
    inner = faiss.IndexFlatIP(DIM)
    legacy = faiss.IndexIDMap2(inner)
    legacy.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
    relative = f"{model_folder_name(KEY)}/v000001.faiss"
    path = Path(django_settings.INDEX_ROOT) / relative
    path.parent.mkdir(parents=True)
    faiss.write_index(legacy, str(path))
    IndexSnapshot.objects.create(
        model_key=KEY, version=1, file_path=relative, factory="Flat", params={}, vector_count=200, dimension=DIM,
        watermark=Embedding.objects.order_by("-id").first().id, checksum=file_sha256(path), build_seconds=0,
    )  # fmt: skip
    # When a reader serves it
    served = reader_refresh(model_key=KEY, block=True)
    # Then it opens (without an ids section) and answers with the image ids stored in it
    assert served.version == 1
    assert served.opened.ids is None
    assert [i for i, _ in index_search(model_key=KEY, vectors=vectors[9], k=5)[0]] == exact(vectors, ids, vectors[9], 5)


@pytest.mark.django_db
def test_filters_map_image_ids_to_positions_on_the_refine_tier(settings, monkeypatch):
    # Given a compressed snapshot (memory budget 0) whose image ids are not its positions
    settings.SEMSEARCH_INDEX_FLAT_MAX_VECTORS = 100
    settings.SEMSEARCH_INDEX_MEMORY_BUDGET_MB = 0
    vectors = clustered(1500, seed=27)
    ids = images_with_vectors(vectors, start=50_000)
    index_build(model_key=KEY)
    assert IndexSnapshot.objects.get().factory.endswith("Refine(SQ8)")
    # When searching within a large allowed set (the index path, forced by a low limit)
    monkeypatch.setattr("search.index.reader.EXACT_FILTER_MAX", 10)
    allowed = ids[1::3]
    hits = index_search(model_key=KEY, vectors=vectors[1], k=10, allowed_ids=allowed)
    # Then only allowed images come back, the query's own first, and most of the exact top 10 is found
    found = [i for i, _ in hits[0]]
    assert set(found) <= set(allowed)
    assert found[0] == ids[1]
    assert len(set(found) & set(exact(vectors[1::3], allowed, vectors[1], 10))) >= 8


def test_the_compressed_tier_at_ten_million_fits_one_machine():
    # Given 10M 512-d vectors (20 GB raw) and the default 4 GB budget
    plan = index_plan(count=10_000_000, dimension=512, memory_budget_bytes=4096 * 1024 * 1024, flat_max=50_000)
    # Then the plan is PQ codes refined with SQ8 codes, with a bounded number of lists, under 6.5 GB in all
    assert plan.factory == "OPQ64,IVF8192,PQ64x8,Refine(SQ8)"
    assert plan.train_size == 64 * 8192
    assert 5.5e9 < plan.estimated_bytes < 6.5e9

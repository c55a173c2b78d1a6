"""Streamed builds of the compressed tier: never every vector in memory, same snapshot semantics."""

from __future__ import annotations

import dataclasses
import hashlib
import tracemalloc

import numpy as np
import pytest

from images.models import Image, ImageStatus
from search.index import index_build, index_search, reader_refresh, reader_reset
from search.index.storage import snapshot_read
from search.index.tuning import SAMPLE_QUERIES
from search.index.vectors import vectors_load
from search.models import Embedding, IndexSnapshot
from tests.search.test_index import KEY, clustered, exact

WIDE = 256  # the memory test's dimension: a vector's bytes dwarf the per-row overhead of the ORM
WRITE_BUFFER = 1024 * 1024  # faiss.PyCallbackIOWriter hands the snapshot writer bytes objects of up to 1 MiB


@pytest.fixture(autouse=True)
def _compressed_tier(settings, tmp_path):
    """A fresh reader, and a memory budget of 0 so every build above 100 vectors is the compressed tier."""
    settings.INDEX_ROOT = tmp_path / "index"
    settings.SEMSEARCH_INDEX_FLAT_MAX_VECTORS = 100
    settings.SEMSEARCH_INDEX_MEMORY_BUDGET_MB = 0
    reader_reset()
    yield
    reader_reset()


@pytest.fixture
def no_full_loads(monkeypatch):
    """Fail the test if the build reads every vector at once or computes its truths from them."""

    def refused(**_):
        raise AssertionError("a compressed-tier build loaded every stored vector")

    for name in ("search.index.build.vectors_load", "search.index.build.tuning_truths"):
        monkeypatch.setattr(name, refused)


def new_images(count: int, *, start: int = 0) -> list[int]:
    images = Image.objects.bulk_create(
        Image(content_hash=hashlib.sha256(f"stream-{start + i}".encode()).hexdigest(), original=f"originals/{i}.png",
              width=8, height=8, format="PNG", status=ImageStatus.READY)
        for i in range(count)
    )  # fmt: skip
    return [image.id for image in images]


def embed(image_ids: list[int], vectors: np.ndarray) -> None:
    Embedding.objects.bulk_create(
        Embedding(image_id=image_id, model_key=KEY, dimension=vectors.shape[1], vector=vector.astype("<f4").tobytes())
        for image_id, vector in zip(image_ids, vectors, strict=True)
    )


def snapshot_ids(snapshot: IndexSnapshot) -> list[int]:
    return np.asarray(snapshot_read(file_path=snapshot.file_path, checksum=snapshot.checksum).ids).tolist()


@pytest.mark.django_db
def test_a_compressed_build_streams_the_vectors_and_meets_the_recall_target(settings, no_full_loads):
    # Given 2,500 clustered vectors, embedded in an order unlike their images' (embedding ids ≠ image-id order)
    settings.SEMSEARCH_INDEX_RECALL_TARGET = 0.95
    vectors = clustered(2500, seed=41, clusters=100)
    ids = new_images(len(vectors))
    order = np.random.default_rng(0).permutation(len(ids))
    embed([ids[i] for i in order], vectors[order])
    # When a snapshot is built (loading every vector would fail the test)
    result = index_build(model_key=KEY)
    # Then it is the refine tier, tuned to the recall target, holding exactly the stored embeddings in image order
    snapshot = IndexSnapshot.objects.get(model_key=KEY)
    assert result["status"] == "built"
    assert snapshot.factory.endswith(",Refine(SQ8)")
    assert snapshot.recall_at_10 >= 0.95
    assert snapshot.watermark == Embedding.objects.order_by("-id").first().id
    assert snapshot.vector_count == len(ids)
    assert snapshot_ids(snapshot) == sorted(ids)
    # And searches through it find the exact nearest neighbours of stored vectors
    queries = vectors[:40]
    hits = index_search(model_key=KEY, vectors=queries, k=10)
    recall = np.mean([len({i for i, _ in hits[r]} & set(exact(vectors, ids, queries[r], 10))) / 10 for r in range(40)])
    assert recall >= 0.95
    # And a second build finds it current
    assert index_build(model_key=KEY)["status"] == "current"


@pytest.mark.django_db
def test_embeddings_added_during_a_streamed_build_are_left_to_the_delta(monkeypatch, no_full_loads):
    # Given an image not embedded yet (the lowest image id) and 1,200 embedded ones
    [late_image] = new_images(1, start=90_000)
    vectors = clustered(1200, seed=42)
    ids = new_images(len(vectors))
    embed(ids, vectors)
    watermark = Embedding.objects.order_by("-id").first().id
    # When, while the build trains (before it streams the vectors), that image and a new one get embeddings
    import search.index.streamed as streamed

    real_train = streamed.index_train
    newcomers = -vectors[:2]

    def train_then_embed(**kwargs):
        real_train(**kwargs)
        if not Embedding.objects.filter(image_id=late_image).exists():  # the first build only
            [fresh_image] = new_images(1, start=95_000)
            embed([late_image, fresh_image], newcomers)

    monkeypatch.setattr(streamed, "index_train", train_then_embed)
    index_build(model_key=KEY)
    # Then the snapshot holds exactly the embeddings up to the watermark read when the build started
    snapshot = IndexSnapshot.objects.get(model_key=KEY)
    assert snapshot.watermark == watermark
    assert snapshot_ids(snapshot) == sorted(ids)
    assert snapshot.vector_count == len(ids)
    # And the two new embeddings are served by the delta, the late one first for its own vector
    served = reader_refresh(model_key=KEY, block=True)
    assert (served.version, served.delta.count) == (1, 2)
    assert index_search(model_key=KEY, vectors=newcomers[0], k=3)[0][0] == (late_image, pytest.approx(1.0, abs=1e-5))
    # And the next build folds them in
    assert index_build(model_key=KEY)["count"] == len(ids) + 2


@pytest.mark.django_db
def test_a_streamed_build_holds_about_one_chunk_of_vectors_not_the_catalogue(monkeypatch, no_full_loads):
    # Given 6,000 stored 256-d vectors (6 MB raw), streamed 100 rows (100 KB) at a time, trained on 300 of them
    rng = np.random.default_rng(43)
    vectors = rng.standard_normal((6000, WIDE)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embed(new_images(len(vectors)), vectors)
    raw, chunk_bytes, train_bytes = vectors.nbytes, 100 * WIDE * 4, 300 * WIDE * 4
    query_bytes = SAMPLE_QUERIES * WIDE * 4  # the tuning queries, held through the build
    monkeypatch.setattr("search.index.streamed.CHUNK", 100)
    import search.index.build as build

    real_plan = build.index_plan
    monkeypatch.setattr(build, "index_plan", lambda **kw: dataclasses.replace(real_plan(**kw), train_size=300))
    # When a snapshot is built with every Python and numpy allocation traced (faiss's own index is not)
    index_build(model_key=KEY)  # once untraced: imports and one-time caches are not the build's memory
    tracemalloc.start()
    try:
        index_build(model_key=KEY, force=True)
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        vectors_load(model_key=KEY)  # what the in-memory path holds, for scale
        _, loaded_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then the build's peak is bounded by the samples, the file writer's 1 MiB buffer and a few chunks (measured:
    # ~1.8 MB from 6,000 to 10,000 vectors), a fraction of the raw vectors, which loading them all exceeds
    assert IndexSnapshot.objects.get(version=2).factory.endswith(",Refine(SQ8)")
    assert loaded_peak > raw
    assert streamed_peak < train_bytes + 2 * query_bytes + WRITE_BUFFER + 4 * chunk_bytes
    assert streamed_peak < raw / 3

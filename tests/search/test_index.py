"""The index: building snapshots, the reader (delta, allowed ids, version swaps) and the exact fallback."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from images.models import Image, ImageStatus
from search.index import index_build, index_search, index_status, reader_refresh, reader_reset, stored_vectors
from search.models import Embedding, IndexSnapshot, SearchModel, SearchModelState

KEY = "synthetic-model@test"
DIM = 32


def clustered(n: int, *, seed: int = 0, clusters: int = 20) -> np.ndarray:
    """L2-normalised float32 vectors drawn from a Gaussian mixture (so nearest neighbours mean something)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    points = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def images_with_vectors(vectors: np.ndarray, *, key: str = KEY, start: int = 0) -> list[int]:
    """Ready images with one stored embedding each (bulk, so a few thousand take well under a second)."""
    images = Image.objects.bulk_create(
        Image(content_hash=hashlib.sha256(f"{key}-{start + i}".encode()).hexdigest(), original=f"originals/{i}.png",
              width=8, height=8, format="PNG", status=ImageStatus.READY)
        for i in range(len(vectors))
    )  # fmt: skip
    Embedding.objects.bulk_create(
        Embedding(image_id=image.id, model_key=key, dimension=DIM, vector=vector.astype("<f4").tobytes())
        for image, vector in zip(images, vectors, strict=True)
    )
    return [image.id for image in images]


def exact(vectors: np.ndarray, ids: list[int], query: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return [ids[i] for i in order]


@pytest.fixture(autouse=True)
def _fresh_reader(settings, tmp_path):
    settings.INDEX_ROOT = tmp_path / "index"
    reader_reset()
    yield
    reader_reset()


@pytest.mark.django_db
def test_without_snapshot_search_is_exact_over_stored_vectors():
    # Given stored embeddings and no snapshot
    vectors = clustered(300)
    ids = images_with_vectors(vectors)
    # When searching
    hits = index_search(model_key=KEY, vectors=vectors[:3], k=5)
    # Then every query gets the exact top 5, best first, its own image first
    for row in range(3):
        assert [image_id for image_id, _ in hits[row]] == exact(vectors, ids, vectors[row], 5)
        assert hits[row][0][0] == ids[row]
        assert hits[row][0][1] == pytest.approx(1.0, abs=1e-5)
        scores = [score for _, score in hits[row]]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.django_db
def test_flat_snapshot_is_built_recorded_and_served():
    # Given 500 stored embeddings
    vectors = clustered(500, seed=1)
    ids = images_with_vectors(vectors)
    # When a snapshot is built
    result = index_build(model_key=KEY)
    # Then it is a Flat snapshot with perfect measured recall, recorded with its checksum and watermark
    snapshot = IndexSnapshot.objects.get(model_key=KEY)
    assert result["status"] == "built"
    assert (snapshot.version, snapshot.factory, snapshot.vector_count, snapshot.dimension) == (1, "Flat", 500, DIM)
    assert snapshot.recall_at_10 == pytest.approx(1.0)
    assert snapshot.watermark == Embedding.objects.order_by("-id").first().id
    assert len(snapshot.checksum) == 64
    # And a second build without changes keeps it
    assert index_build(model_key=KEY)["status"] == "current"
    # And searches answer from the snapshot with exact results
    hits = index_search(model_key=KEY, vectors=vectors[10], k=10)
    assert [i for i, _ in hits[0]] == exact(vectors, ids, vectors[10], 10)
    assert reader_refresh(model_key=KEY).version == 1


@pytest.mark.django_db
def test_ivf_is_chosen_above_the_flat_limit_and_tuned_to_the_recall_target(settings):
    # Given more vectors than the Flat limit
    settings.SEMSEARCH_INDEX_FLAT_MAX_VECTORS = 1000
    settings.SEMSEARCH_INDEX_RECALL_TARGET = 0.95
    vectors = clustered(4000, seed=2)
    ids = images_with_vectors(vectors)
    # When a snapshot is built
    index_build(model_key=KEY)
    # Then it is an IVF index whose nprobe was tuned until the measured recall reached the target
    snapshot = IndexSnapshot.objects.get(model_key=KEY)
    assert snapshot.factory.startswith("IVF")
    assert snapshot.factory.endswith(",Flat")
    assert snapshot.params["nprobe"] >= 1
    assert snapshot.recall_at_10 >= 0.93
    # And searches through it find the exact nearest neighbour of stored vectors
    queries = vectors[:20]
    hits = index_search(model_key=KEY, vectors=queries, k=10)
    overlap = np.mean([len({i for i, _ in hits[r]} & set(exact(vectors, ids, queries[r], 10))) / 10 for r in range(20)])
    assert overlap >= 0.9


@pytest.mark.django_db
def test_compressed_codes_above_the_memory_budget_refine_with_sq8_codes_in_the_snapshot(settings, monkeypatch):
    # Given a memory budget smaller than the raw vectors
    settings.SEMSEARCH_INDEX_FLAT_MAX_VECTORS = 1000
    settings.SEMSEARCH_INDEX_MEMORY_BUDGET_MB = 0
    vectors = clustered(2000, seed=3)
    ids = images_with_vectors(vectors)
    # When a snapshot is built
    index_build(model_key=KEY)
    # Then it holds product-quantised codes refined with 8-bit codes, k_factor tuned with nprobe, recall recorded
    snapshot = IndexSnapshot.objects.get(model_key=KEY)
    assert snapshot.factory.startswith("IVF")
    assert ",PQ" in snapshot.factory
    assert snapshot.factory.endswith(",Refine(SQ8)")
    assert snapshot.params["k_factor"] >= 2
    assert snapshot.recall_at_10 >= 0.9

    # And searches never read stored vectors from the database: the refinement data is in the snapshot
    def no_database(**_):
        raise AssertionError("the refine tier read stored vectors from the database")

    monkeypatch.setattr("search.index.reader.stored_vectors", no_database)
    hits = index_search(model_key=KEY, vectors=vectors[5], k=5)
    # And the scores are the SQ8 inner products, within a hair of the exact ones, the query's own image first
    position = {image_id: n for n, image_id in enumerate(ids)}
    for image_id, score in hits[0]:
        assert score == pytest.approx(float(vectors[position[image_id]] @ vectors[5]), abs=0.02)
    assert hits[0][0][0] == ids[5]


@pytest.mark.django_db
def test_an_image_embedded_after_the_snapshot_is_found_through_the_delta():
    # Given a snapshot of 200 vectors, served by this process
    vectors = clustered(200, seed=4)
    images_with_vectors(vectors)
    index_build(model_key=KEY)
    index_search(model_key=KEY, vectors=vectors[0], k=3)
    # When a new image is embedded (no snapshot rewrite)
    newcomer = -vectors[0]
    [new_id] = images_with_vectors(newcomer[None, :], start=10_000)
    served = reader_refresh(model_key=KEY, block=True)
    # Then a search for it finds it first, through the delta
    hits = index_search(model_key=KEY, vectors=newcomer, k=3)
    assert hits[0][0] == (new_id, pytest.approx(1.0, abs=1e-5))
    assert served.version == 1
    assert served.delta.count == 1
    assert IndexSnapshot.objects.count() == 1
    assert index_status(KEY)["delta"] == 1


@pytest.mark.django_db
def test_allowed_ids_restrict_hits_both_small_and_large_sets(monkeypatch):
    # Given a snapshot of 600 vectors
    vectors = clustered(600, seed=5)
    ids = images_with_vectors(vectors)
    index_build(model_key=KEY)
    query = vectors[0]
    # When searching within a small allowed set and within a large one (index path, forced by a low limit)
    small = ids[300:320]
    small_hits = index_search(model_key=KEY, vectors=query, k=5, allowed_ids=set(small))
    monkeypatch.setattr("search.index.reader.EXACT_FILTER_MAX", 10)
    large = ids[::2]
    large_hits = index_search(model_key=KEY, vectors=query, k=5, allowed_ids=large)
    # Then only allowed ids come back, in exact order
    assert [i for i, _ in small_hits[0]] == exact(vectors[300:320], small, query, 5)
    assert [i for i, _ in large_hits[0]] == exact(vectors[::2], large, query, 5)
    assert index_search(model_key=KEY, vectors=query, k=5, allowed_ids=[]) == [[]]


@pytest.mark.django_db
def test_stored_vectors_returns_the_vectors_of_the_images_that_have_one():
    vectors = clustered(5, seed=6)
    ids = images_with_vectors(vectors)
    found = stored_vectors(model_key=KEY, image_ids=[ids[1], ids[3], 999_999])
    assert set(found) == {ids[1], ids[3]}
    np.testing.assert_array_equal(found[ids[3]], vectors[3])


@pytest.mark.django_db
def test_readiness_and_status_report_the_active_models_snapshot():
    from search.index import index_status_for_readiness

    # Given an active model with a few embeddings and no snapshot yet
    SearchModel.objects.create(model_key=KEY, model_id="synthetic", state=SearchModelState.ACTIVE)
    images_with_vectors(clustered(50, seed=7))
    # Then the exact fallback can serve, and status says there is no snapshot
    assert index_status_for_readiness() is None
    assert index_status()["version"] is None
    assert index_status()["delta"] == 50
    # When a snapshot is built, status reports it
    index_build(model_key=KEY)
    status = index_status()
    assert (status["model_key"], status["version"], status["factory"], status["count"], status["delta"]) == (
        KEY, 1, "Flat", 50, 0)  # fmt: skip
    assert status["images"]["ready"] == 50
    assert status["pending"] == 0


@pytest.mark.django_db
def test_an_embedding_committed_late_with_a_lower_id_still_reaches_the_delta():
    # Given a snapshot served by this process and a delta that has already seen embedding id N+10
    vectors = clustered(50, seed=8)
    images_with_vectors(vectors)
    index_build(model_key=KEY)
    base = Embedding.objects.order_by("-id").first().id
    early, late = Image.objects.bulk_create(
        Image(content_hash=hashlib.sha256(f"late-{i}".encode()).hexdigest(), original="originals/x.png", width=8,
              height=8, format="PNG", status=ImageStatus.READY) for i in range(2)
    )  # fmt: skip
    fresh = clustered(2, seed=9)
    Embedding.objects.create(id=base + 10, image=early, model_key=KEY, dimension=DIM, vector=fresh[0].tobytes())
    assert reader_refresh(model_key=KEY, block=True).delta.count == 1
    # When a row with a lower id commits afterwards (ids are allocated before commit)
    Embedding.objects.create(id=base + 5, image=late, model_key=KEY, dimension=DIM, vector=fresh[1].tobytes())
    served = reader_refresh(model_key=KEY, block=True)
    # Then it joins the delta too, once, and is found
    assert sorted(served.delta.ids.tolist()) == sorted([early.id, late.id])
    assert index_search(model_key=KEY, vectors=fresh[1], k=1)[0][0][0] == late.id
    assert reader_refresh(model_key=KEY, block=True).delta.count == 2

"""/metrics: django-prometheus request metrics plus the catalogue gauges, fresh at every scrape."""

from __future__ import annotations

import hashlib

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from images.models import Image
from search.models import IndexSnapshot
from tests.site.test_health import closed_port, unreachable_database  # noqa: F401  (a fixture used below)

REQUESTS = "django_http_requests_total_by_view_transport_method_total"


def sample_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def make_image(n: int, status: str = "pending") -> Image:
    digest = hashlib.sha256(f"metrics-{n}".encode()).hexdigest()
    return Image.objects.create(
        content_hash=digest, original=f"originals/{digest}.png", width=4, height=3, format="PNG", status=status
    )


@pytest.mark.django_db
def test_request_counter_rises_when_a_request_runs(client):
    # Given the current count of liveness requests
    before = sample_value(scrape(client), REQUESTS, view="healthz", method="GET")

    # When two requests run
    client.get("/healthz")
    client.get("/healthz")

    # Then django-prometheus counted both, under the view's name
    assert sample_value(scrape(client), REQUESTS, view="healthz", method="GET") == before + 2


@pytest.mark.django_db
def test_image_gauges_follow_the_catalogue_at_scrape_time(client):
    # Given a scrape of an empty catalogue
    assert sample_value(scrape(client), "semsearch_images", status="pending") == 0

    # When images are added
    make_image(1)
    make_image(2)
    make_image(3, status="failed")

    # Then the next scrape counts them by status, with no other call needed
    text = scrape(client)
    assert sample_value(text, "semsearch_images", status="pending") == 2
    assert sample_value(text, "semsearch_images", status="failed") == 1
    assert sample_value(text, "semsearch_images", status="ready") == 0


@pytest.mark.django_db
def test_snapshot_gauges_report_the_newest_snapshot(client):
    # Given no snapshot, then two versions of the active model (and a newer one of another), the newer built a
    # minute ago
    from search.state import active_model_key

    assert sample_value(scrape(client), "semsearch_index_snapshot_version") == 0
    IndexSnapshot.objects.create(model_key="other", version=7, file_path="o/v7.faiss", factory="Flat", vector_count=1,
                                 dimension=8, watermark=1, checksum="0" * 64)  # fmt: skip
    for version in (1, 2):
        IndexSnapshot.objects.create(
            model_key=active_model_key(), version=version, file_path=f"m/v{version}.faiss", factory="Flat",
            vector_count=10, dimension=8, watermark=10, checksum="0" * 64,
        )  # fmt: skip
    IndexSnapshot.objects.filter(version=2).update(created_at=timezone.now() - timezone.timedelta(seconds=60))
    IndexSnapshot.objects.filter(version=1).update(created_at=timezone.now() - timezone.timedelta(seconds=600))

    # When scraped
    text = scrape(client)

    # Then the version and age are the newest snapshot's
    assert sample_value(text, "semsearch_index_snapshot_version") == 2
    assert 60 <= sample_value(text, "semsearch_index_snapshot_age_seconds") < 120


@pytest.mark.django_db
def test_queue_depth_counts_waiting_messages(client):
    # Given the embed queue's depth
    from semsearch_site.celery import app

    before = sample_value(scrape(client), "semsearch_queue_depth", queue="embed")

    # When a message is queued with no worker to take it
    app.send_task("tests.site.never_consumed", queue="embed")
    try:
        # Then the next scrape sees it
        assert sample_value(scrape(client), "semsearch_queue_depth", queue="embed") == before + 1
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("embed")


@pytest.mark.django_db(transaction=True)
def test_scrape_succeeds_while_database_and_broker_are_down(client, settings, unreachable_database):  # noqa: F811
    # Given neither the database nor the broker answers
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    # When scraped
    text = scrape(client)

    # Then the request metrics are still there (the gauges keep their last values)
    assert "django_http_requests_total_by_view_transport_method_total" in text
    assert "semsearch_images" in text


@pytest.mark.django_db
def test_search_metrics_change_when_a_search_runs(client):
    # Given an active model with hand-made vectors (no encoder needed for an image: term)
    from search.index import reader_reset
    from search.models import SearchModel, SearchModelState
    from search.state import active_model_key_forget
    from tests.search.test_search_fixtures import HAND_MODEL_KEY, embedding_add, image_make, unit

    SearchModel.objects.create(model_key=HAND_MODEL_KEY, model_id="hand-made", state=SearchModelState.ACTIVE)
    active_model_key_forget()
    reader_reset()
    images = [image_make(title=f"pic {i}") for i in range(3)]
    for image, vector in zip(images, ([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]), strict=True):
        embedding_add(image, unit(vector))
    before = scrape(client)

    # When a search runs through the API
    response = client.get("/api/v1/search", {"q": f"image:{images[0].pk}"})

    # Then the search counter and every stage's latency histogram moved, and the API request was counted
    assert response.status_code == 200, response.content
    after = scrape(client)
    assert sample_value(after, "semsearch_searches_total") == sample_value(before, "semsearch_searches_total") + 1
    for stage in ("encode", "index", "hydrate"):
        name = "semsearch_search_stage_seconds_count"
        assert sample_value(after, name, stage=stage) > sample_value(before, name, stage=stage), stage
    assert sample_value(after, REQUESTS, method="GET") > sample_value(before, REQUESTS, method="GET")
    active_model_key_forget()
    reader_reset()

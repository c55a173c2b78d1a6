"""Progress a person can see: ``/api/v1/status`` and the admin's embedding progress page give images/s over the
last minute and an estimated time to finish while images are being embedded."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from search.models import Embedding
from search.services.embedding import embedding_compute
from tests.workers.test_embed_tasks import _toy_model, stored_pictures  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db


def embedded_seconds_ago(*, done: int, pending: int, seconds: float) -> None:
    """``done`` images embedded (their vectors dated ``seconds`` ago) and ``pending`` more waiting."""
    ids, _ = stored_pictures(done, seed=21, size=48)
    assert embedding_compute(image_ids=ids)["embedded"] == done
    Embedding.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))
    stored_pictures(pending, seed=22, size=48)


def test_status_reports_the_rate_and_time_to_finish_while_embedding(settings):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 8
    # Given 8 images embedded over the last 20 seconds and 8 still pending
    embedded_seconds_ago(done=8, pending=8, seconds=20)
    # When the status is read
    body = Client().get("/api/v1/status").json()
    # Then it says about 0.4 images/s and about 20 s to go
    progress = body["embedding"]
    assert progress["pending"] == 8
    assert progress["images_per_s"] == pytest.approx(0.4, abs=0.05)
    assert progress["eta_seconds"] == pytest.approx(20, abs=3)


def test_status_has_no_estimate_when_nothing_was_embedded_in_the_last_minute(settings):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 8
    embedded_seconds_ago(done=8, pending=3, seconds=600)
    progress = Client().get("/api/v1/status").json()["embedding"]
    assert (progress["images_per_s"], progress["pending"], progress["eta_seconds"]) == (0.0, 3, None)


def test_the_admin_progress_page_shows_rate_and_time_to_finish(settings):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 8
    embedded_seconds_ago(done=8, pending=8, seconds=20)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "pw"))
    page = client.get("/admin/images/image/queue/").content.decode()
    rate = re.search(r"<td>([\d.]+) images/s \(last minute\)</td>", page)
    eta = re.search(r"<td>about (\d+) s</td>", page)
    assert rate, page[page.find("<h2>Embedding") :][:600]
    assert eta, page[page.find("<h2>Embedding") :][:600]
    assert float(rate.group(1)) == pytest.approx(0.4, abs=0.05)
    assert int(eta.group(1)) == pytest.approx(20, abs=3)

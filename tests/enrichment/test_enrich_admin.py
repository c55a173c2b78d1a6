"""Admin: re-running enrichment on selected images, and accepting or rejecting automatic tags in bulk."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.dispatch import ENRICH_OCR, ENRICH_TAGS, task_send
from images.models import AutoTag, AutoTagState
from search.services.embedding import embedding_compute
from tests.enrichment.conftest import toy_pictures_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_signed_in() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_admin_actions_queue_ocr_and_tagging_of_the_selected_images(
    admin_client_signed_in: Client, django_capture_on_commit_callbacks
) -> None:
    # Given three stored images, two of them selected
    ids = [image.pk for image, _ in toy_pictures_store(3, seed=31)]
    for action, name in (("rerun_ocr", ENRICH_OCR), ("rerun_autotags", ENRICH_TAGS)):
        # When an admin runs the action on them
        with django_capture_on_commit_callbacks() as callbacks:
            response = admin_client_signed_in.post(
                "/admin/images/image/", {"action": action, "_selected_action": ids[:2]}, follow=True
            )
        # Then exactly those images are queued on the enrich tasks (OCR forced to read again)
        assert response.status_code == 200
        sends = [cb.keywords for cb in callbacks if getattr(cb, "func", None) is task_send and cb.args[0] == name]
        assert [sorted(send["image_ids"]) for send in sends] == [sorted(ids[:2])]
        if name == ENRICH_OCR:
            assert sends[0]["force"] is True


def test_admin_rejects_and_accepts_automatic_tags_in_bulk(admin_client_signed_in: Client) -> None:
    # Given embedded toy pictures with proposed tags
    embedding_compute(image_ids=[image.pk for image, _ in toy_pictures_store(6, seed=32)])
    first, second = AutoTag.objects.order_by("id")[:2]
    # When an admin rejects one and accepts the other from the automatic-tag list
    for action, tag in (("reject", first), ("accept", second)):
        admin_client_signed_in.post("/admin/images/autotag/", {"action": action, "_selected_action": [tag.pk]})
    # Then their states changed, with the reviewer recorded
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (AutoTagState.REJECTED, AutoTagState.ACCEPTED)
    assert first.reviewed_by is not None
    assert first.reviewed_by.get_username() == "root"

"""A real worker: an uploaded picture with words becomes searchable first, then its text is read on the enrich queue."""

from __future__ import annotations

import time

import pytest

from core.dispatch import EMBED_IMAGES, task_send
from images.models import AutoTag, Image, ImageStatus, PictureText, PictureTextStatus
from search.enrichment.text_pictures import text_picture
from tests.enrichment.conftest import picture_store, toy_pictures_store


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_embeds_tags_and_then_reads_text_on_its_own_queue(celery_worker_process) -> None:
    # Given a pending picture with a sign on it, and a pending toy picture
    sign = picture_store(text_picture(lines=[["Museum", "Entrance"]], size=44), status=ImageStatus.PENDING)
    ((toy, _),) = toy_pictures_store(1, seed=21)
    # When their embedding is requested
    task_send(EMBED_IMAGES, image_ids=[sign.pk, toy.pk])
    # Then both become ready, and the text is read afterwards by the enrich queue's task
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and PictureText.objects.filter(image_id__in=[sign.pk, toy.pk]).count() < 2:
        time.sleep(0.3)
    assert set(Image.objects.values_list("status", flat=True)) == {ImageStatus.READY}
    celery_worker_process.wait_for("workers.tasks.enrich_ocr", timeout=5)
    text = PictureText.objects.get(image=sign)
    assert text.status == PictureTextStatus.DONE
    assert {"museum", "entrance"} <= set(text.words.split())
    assert PictureText.objects.get(image=toy).text == ""
    # And the toy picture got automatic tags from the embedding batch
    assert AutoTag.objects.filter(image=toy).exists()

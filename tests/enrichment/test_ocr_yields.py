"""Reading text yields to embedding: while images wait for their vectors, the OCR task sends itself again later."""

from __future__ import annotations

import pytest
from celery import current_app

from images.models import ImageStatus, PictureText
from images.services import picture_text
from search.enrichment.text_pictures import text_picture
from tests.enrichment.conftest import picture_store
from workers.tasks import OCR_MAX_DEFERRALS, enrich_ocr

pytestmark = pytest.mark.django_db


def test_ocr_waits_while_images_await_embedding_then_reads(monkeypatch) -> None:
    # Given a ready picture with text, and another picture still waiting for its embedding
    sign = picture_store(text_picture(lines=[["harbour", "market"]], size=40))
    waiting = picture_store(text_picture(lines=[["later"]], size=30), status=ImageStatus.PENDING)
    sent = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, kwargs, countdown=None: sent.append((name, kwargs, countdown))
    )
    # When the OCR task runs meanwhile
    result = enrich_ocr(image_ids=[sign.pk])
    # Then it read nothing and sent itself again a few seconds later
    assert result["deferred"] == 1
    assert not PictureText.objects.exists()
    assert sent == [(enrich_ocr.name, {"image_ids": [sign.pk], "force": False, "deferrals": 1}, 5)]
    # And once nothing waits any more (or after the most deferrals) it reads the text
    waiting.status = ImageStatus.READY
    waiting.save(update_fields=["status"])
    assert enrich_ocr(image_ids=[sign.pk], deferrals=1)["read"] == 1
    assert "harbour" in PictureText.objects.get(image=sign).words
    waiting.status = ImageStatus.PENDING
    waiting.save(update_fields=["status"])
    assert enrich_ocr(image_ids=[waiting.pk], deferrals=OCR_MAX_DEFERRALS)["read"] == 1


def test_ocr_turns_to_a_fresh_upload_after_the_picture_it_is_reading(monkeypatch) -> None:
    # Given three ready pictures with text, and nothing waiting for its embedding
    pictures = [picture_store(text_picture(lines=[[word]], size=40)) for word in ("harbour", "market", "ticket")]
    sent = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, kwargs, countdown=None: sent.append((name, kwargs, countdown))
    )
    read_one = picture_text._read_one
    arrivals = []

    def read_then_upload(**kwargs):
        row = read_one(**kwargs)
        if not arrivals:  # someone uploads a picture while the first one is being read
            arrivals.append(picture_store(text_picture(lines=[["fresh"]], size=30), status=ImageStatus.PENDING))
        return row

    monkeypatch.setattr(picture_text, "_read_one", read_then_upload)
    # When the OCR task reads them
    result = enrich_ocr(image_ids=[picture.pk for picture in pictures])
    # Then it finished the picture in hand, then sent the other two again for later, and read nothing more
    assert (result["read"], result["deferred"]) == (1, 2)
    assert list(PictureText.objects.values_list("image_id", flat=True)) == [pictures[0].pk]
    later = sorted(picture.pk for picture in pictures[1:])
    assert [(name, sorted(kwargs["image_ids"]), kwargs["deferrals"], countdown) for name, kwargs, countdown in sent] \
        == [(enrich_ocr.name, later, 1, 5)]  # fmt: skip

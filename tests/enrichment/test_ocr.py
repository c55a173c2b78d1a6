"""Text read from the picture: stored, found by its words and substrings, never failing the image."""

from __future__ import annotations

import pytest
from django.db import connection
from PIL import Image as PILImage
from rest_framework.test import APIClient

from images.filters import catalogue_filters
from images.models import Image, ImageStatus, PictureText, PictureTextStatus
from images.selectors import image_list
from images.services.picture_text import picture_text_compute
from search.embeddings.toy_data import random_captioned_pictures
from search.enrichment.text_pictures import text_picture
from tests.enrichment.conftest import picture_store

pytestmark = pytest.mark.django_db


def _listed(**params: str) -> set[int]:
    response = APIClient().get("/api/v1/images/", params)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_pictures_with_words_are_found_by_those_words_and_by_substrings() -> None:
    # Given a sign, a rotated label and a picture with no text at all
    sign = picture_store(text_picture(lines=[["Harbour", "Market"], ["EXIT", "ticket"]], size=40))
    rotated = picture_store(text_picture(lines=[["bakery", "invoice"]], size=36, angle=90))
    plain = picture_store(random_captioned_pictures(1, seed=3, size=160)[0][0])
    # When their text is read
    result = picture_text_compute(image_ids=[sign.pk, rotated.pk, plain.pk])
    # Then every one has a text row, and the words were read (the rotated ones too)
    assert result == {"read": 3, "failed": 0, "skipped": 0, "deferred_ids": []}
    assert set(PictureText.objects.get(image=sign).words.split()) >= {"harbour", "market", "exit", "ticket"}
    assert {"bakery", "invoice"} <= set(PictureText.objects.get(image=rotated).words.split())
    # And the image list finds them by a word in any case, by a substring, by a phrase, and by "whole word" only
    assert _listed(text="harbour") == {sign.pk}
    assert _listed(text="ARBOU") == {sign.pk}
    assert _listed(text="exit ticket") == {sign.pk}
    assert _listed(text='"invoice"') == {rotated.pk}
    assert _listed(text='"invo"') == set()
    assert _listed(text="nowhere-to-be-seen") == set()
    # And the picture without text got an empty reading, which no text filter matches
    assert PictureText.objects.get(image=plain).text == ""
    assert PictureText.objects.get(image=plain).status == PictureTextStatus.DONE
    # And reading again is a no-op unless forced
    assert picture_text_compute(image_ids=[sign.pk])["skipped"] == 1


def test_search_filters_narrow_by_picture_text() -> None:
    from search.query import SearchFilters
    from search.services.search_filters import filters_queryset

    # Given two read pictures
    closed = picture_store(text_picture(lines=[["Closed", "on", "Sunday"]], size=40))
    other = picture_store(text_picture(lines=[["fresh", "bread"]], size=40))
    picture_text_compute(image_ids=[closed.pk, other.pk])
    # When search's filters ask for text
    matching = set(filters_queryset(filters=SearchFilters(text="sunday")).values_list("id", flat=True))
    # Then only the picture carrying it may be a hit
    assert matching == {closed.pk}
    assert set(image_list(filters=catalogue_filters(text="bread")).values_list("id", flat=True)) == {other.pk}
    # And combined with another filter of the image list, both apply
    png = image_list(filters=catalogue_filters(text="bread", formats="PNG"), status="ready")
    jpeg = image_list(filters=catalogue_filters(text="bread", formats="JPEG"), status="ready")
    assert set(png.values_list("id", flat=True)) == {other.pk}
    assert not jpeg.exists()  # (the pictures are stored as PNG)


def test_an_ocr_crash_or_time_out_leaves_the_image_ready(settings) -> None:
    # Given a ready image whose stored file is not a picture, and a ready image with text
    broken = picture_store(text_picture(lines=[["menu"]], size=30))
    with open(broken.original.path, "wb") as handle:
        handle.write(b"not a picture any more")
    slow = picture_store(text_picture(lines=[["agenda", "budget"]] * 3, size=40))
    # When OCR runs with a time limit too short to read anything
    settings.SEMSEARCH_OCR_TIMEOUT_SECONDS = 0.000001
    result = picture_text_compute(image_ids=[broken.pk, slow.pk])
    # Then both readings failed with a reason, and both images are still ready
    assert result == {"read": 0, "failed": 2, "skipped": 0, "deferred_ids": []}
    rows = {row.image_id: row for row in PictureText.objects.all()}
    assert "ImageRejectedError" in rows[broken.pk].error
    assert "longer than" in rows[slow.pk].error
    assert set(Image.objects.values_list("status", flat=True)) == {ImageStatus.READY}


def test_unavailable_ocr_is_reported_by_readyz_and_status_without_failing_readiness(settings) -> None:
    from images.services.ocr import OcrUnavailableError, ocr_engine_reset

    # Given a server whose Tesseract language data is missing
    settings.SEMSEARCH_OCR_TESSDATA = "/nonexistent/tessdata"
    ocr_engine_reset()
    image = picture_store(text_picture(lines=[["lesson"]], size=30))
    # When OCR is asked for, and the status endpoints are read
    with pytest.raises(OcrUnavailableError, match="tesseract-ocr-eng"):
        picture_text_compute(image_ids=[image.pk])
    ready = APIClient().get("/readyz").json()
    status = APIClient().get("/api/v1/status").json()
    # Then nothing was stored (a later run can still read it), and both say OCR is unavailable and why
    assert not PictureText.objects.exists()
    assert ready["optional"]["ocr"]["available"] is False
    assert "tesseract-ocr-eng" in ready["optional"]["ocr"]["reason"]
    assert "database" in ready["checks"]  # the required checks are reported as before
    assert status["enrichment"]["ocr"] == ready["optional"]["ocr"]


def test_ocr_available_here_is_reported_with_its_engine() -> None:
    status = APIClient().get("/api/v1/status").json()["enrichment"]["ocr"]
    assert status["available"] is True, status
    assert status["engine"].startswith("tesseract 5")
    assert connection.vendor in ("sqlite", "postgresql")


def test_big_pictures_are_read_at_a_bounded_size(settings) -> None:
    # Given a large scan with big words
    settings.SEMSEARCH_OCR_MAX_SIDE = 1200
    big = text_picture(lines=[["quarterly", "report"]], size=200)
    assert max(big.size) > 1200
    image = picture_store(big.resize((big.width, big.height), PILImage.Resampling.NEAREST))
    # When it is read
    picture_text_compute(image_ids=[image.pk])
    # Then its words are found all the same
    assert {"quarterly", "report"} <= set(PictureText.objects.get(image=image).words.split())

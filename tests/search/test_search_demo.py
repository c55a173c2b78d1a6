"""`manage.py demo_import` (what `make demo` runs): generated pictures, ingested, embedded, searchable, idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from images.models import Image, ImageStatus
from search.python_api import SemanticSearcher
from tests.search.test_search_fixtures import toy_model_use

pytestmark = pytest.mark.django_db


def test_demo_import_is_searchable_at_once_and_idempotent(settings) -> None:
    toy_model_use(settings)
    out = StringIO()
    call_command("demo_import", "--count", "12", stdout=out)
    assert "12 new pictures imported" in out.getvalue()
    # then every picture is ready with a caption, tags and the demo uploader, in several formats and sizes
    images = list(Image.objects.all())
    assert len(images) == 12
    assert {image.status for image in images} == {ImageStatus.READY}
    assert all("demo" in image.tags and image.uploader.username == "demo" for image in images)
    assert {image.format.upper() for image in images} == {"PNG", "JPEG", "WEBP"}
    assert {image.width for image in images} == {224, 320}
    # and a caption finds its own picture among the best three
    target = images[5]
    assert target.pk in [hit.image.pk for hit in SemanticSearcher().search(target.title, k=3)]
    assert SemanticSearcher().search(target.pk, k=1)[0].image.pk == target.pk
    # when run again / then nothing new is added
    again = StringIO()
    call_command("demo_import", "--count", "12", stdout=again)
    assert "0 new pictures imported, 12 already present" in again.getvalue()
    assert Image.objects.count() == 12

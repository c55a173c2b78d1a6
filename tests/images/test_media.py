"""Stored files are served with their real image type and headers that stop any browser executing them."""

from __future__ import annotations

import pytest
from django.test import Client

from images.services import image_ingest

from .pictures import picture_bytes, png_chunk

pytestmark = pytest.mark.django_db


def test_original_and_thumbnail_are_served_as_images_that_cannot_run():
    png = picture_bytes("PNG")
    polyglot = png[:33] + png_chunk(b"tEXt", b"Comment\0<html><script>alert(1)</script></html>") + png[33:]
    image = image_ingest(data=polyglot).image
    response = Client().get(f"/media/{image.original.name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Content-Disposition"] == f'inline; filename="{image.content_hash}.png"'
    assert b"".join(response.streaming_content) == polyglot
    thumb = Client().get(f"/media/{image.thumbnail.name}")
    assert (thumb.status_code, thumb["Content-Type"]) == (200, "image/jpeg")


@pytest.mark.parametrize(
    "path",
    [
        "/media/../semsearch_site/settings.py",
        "/media/%2e%2e/%2e%2e/secret_key",
        "/media/originals/../../secret_key",
        "/media/originals/ab/cd/" + "0" * 64 + ".png",
        "/media/originals/ab/cd/" + "0" * 64 + ".html",
        "/media/other/ab/cd/" + "0" * 64 + ".png",
        "/media/originals/..%2f..%2fsecret_key",
    ],
)
def test_anything_but_an_existing_content_addressed_name_is_404(path, media_root):
    (media_root.parent / "secret_key").write_text("s3cret")
    response = Client().get(path)
    assert response.status_code == 404
    assert b"s3cret" not in response.content

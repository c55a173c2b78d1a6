"""Media only through Django's storage API: the whole path works on a storage that is not a local folder."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import InMemoryStorage, default_storage
from django.test import Client
from rest_framework.test import APIClient

from images.models import Image, ImageStatus
from search.services.embedding import embedding_compute
from tests.search.test_search_fixtures import toy_model_use, toy_picture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def memory_storage(settings, tmp_path):
    # An empty MEDIA_ROOT proves nothing is read from or written to the local folder behind the storage's back.
    settings.MEDIA_ROOT = str(tmp_path / "unused-media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    return default_storage


def test_upload_embed_search_and_serve_through_an_in_memory_storage(settings, memory_storage, tmp_path) -> None:
    # Given the toy model, an in-memory media storage and an uploader
    toy_model_use(settings)
    user = get_user_model().objects.create_user("alice", password="pw-alice-1", is_staff=True)
    api = APIClient()
    api.force_authenticate(user)
    pictures = {
        "red-circle.png": toy_picture_bytes(kind="circle", colour="red", seed=1),
        "blue-square.png": toy_picture_bytes(kind="square", colour="blue", seed=2),
    }
    # When the pictures are uploaded through the REST API and embedded
    response = api.post(
        "/api/v1/images/",
        {"files": [_upload(name, data) for name, data in pictures.items()]},
        format="multipart",
    )
    assert response.status_code in (200, 201, 207), response.content
    ids = list(Image.objects.values_list("id", flat=True))
    result = embedding_compute(image_ids=ids)
    assert result["embedded"] == 2, result["failures"]
    # Then every file lives in the storage backend, none on the local disk
    assert isinstance(default_storage._wrapped, InMemoryStorage)
    for image in Image.objects.all():
        assert image.status == ImageStatus.READY
        assert default_storage.exists(image.original.name)
        assert default_storage.exists(image.thumbnail.name)
    assert not (tmp_path / "unused-media").exists()
    # And a search finds the right picture, with media URLs the storage gives, served through the storage
    found = Client().get("/api/v1/search", {"q": "a red circle in the centre on a white background", "limit": 1})
    assert found.status_code == 200, found.content
    hit = found.json()["results"][0]["image"]
    red = Image.objects.get(original_filename="red-circle.png")
    assert hit["id"] == red.pk
    assert hit["thumbnail_url"].endswith(red.thumbnail.name)
    served = Client().get(f"/media/{red.original.name}")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == pictures["red-circle.png"]


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")

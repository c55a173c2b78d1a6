"""One upload enqueues its images together: a 50-file request (multi-file REST, a zip, the admin form) sends at
most ⌈50 / batch size⌉ embedding tasks to the real broker of the run mode, each holding up to a batch of ids."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from images.models import Image
from tests.workers.test_index_tasks import broker_purge

from .pictures import picture_bytes
from .test_api import client_for, user_with

pytestmark = pytest.mark.django_db

FILES = 50


def embed_messages() -> list[list[int]]:
    """The ``image_ids`` of every ``embed_images`` message waiting in the broker's ``embed`` queue."""
    url = django_settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        import redis

        raw = redis.Redis.from_url(url, socket_connect_timeout=2).lrange("embed", 0, -1)
    else:
        folder = Path(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        raw = [path.read_bytes() for path in folder.glob("*.embed.msg")]
    return [_ids(json.loads(message)) for message in raw]


def _ids(envelope: dict) -> list[int]:
    import base64

    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    _args, kwargs, _embed = json.loads(body)
    return kwargs["image_ids"]


def pictures(count: int) -> list[tuple[str, bytes]]:
    return [(f"p{i}.png", picture_bytes("PNG", size=(40, 30), color=(i, 255 - i, 7))) for i in range(count)]


@pytest.fixture
def empty_queue(settings):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 16
    broker_purge()
    yield
    broker_purge()


def assert_batched(messages: list[list[int]]) -> None:
    created = sorted(Image.objects.values_list("id", flat=True))
    assert len(created) == FILES
    assert len(messages) <= math.ceil(FILES / 16), f"{len(messages)} tasks for one upload of {FILES} files"
    assert sorted(pk for ids in messages for pk in ids) == created
    assert all(len(ids) <= 16 for ids in messages)


@pytest.mark.parametrize("as_zip", [False, True], ids=["multi-file", "zip"])
def test_a_50_file_rest_upload_enqueues_at_most_ceil_50_over_batch_tasks(
    empty_queue, as_zip, django_capture_on_commit_callbacks
):
    # Given a user who may add images and 50 distinct pictures (as 50 files, or as one zip)
    client = client_for(user_with("add_image"))
    files = pictures(FILES)
    if as_zip:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files:
                archive.writestr(name, data)
        payload = [SimpleUploadedFile("all.zip", buffer.getvalue())]
    else:
        payload = [SimpleUploadedFile(name, data) for name, data in files]
    # When they are uploaded in one request (the commit callbacks run, sending to the real broker)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/images/", {"files": payload}, format="multipart")
    # Then all 50 are created and at most ⌈50/16⌉ = 4 tasks wait in the embed queue, covering every id once
    assert response.status_code == 201, response.content
    assert_batched(embed_messages())


def test_a_50_file_admin_upload_enqueues_at_most_ceil_50_over_batch_tasks(
    empty_queue, client, django_capture_on_commit_callbacks
):
    # Given a staff member on the admin's upload page
    admin = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw")
    client.force_login(admin)
    files = [SimpleUploadedFile(name, data) for name, data in pictures(FILES)]
    # When 50 files are uploaded at once
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/images/image/upload/", {"files": files})
    # Then they are queued in at most 4 tasks
    assert response.status_code in (200, 302), response.content[:300]
    assert_batched(embed_messages())

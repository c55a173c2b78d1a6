"""The catalogue admin: multi-file and zip upload, status filter, re-embed and delete actions, queue progress."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from images.models import Image, ImageStatus
from images.services import image_ingest
from tests.dispatched import embed_requests

from .pictures import picture_bytes, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "pw"))
    return client


def test_upload_many_files_and_a_zip(admin_client_):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inside/one.png", picture_bytes("PNG", color=(3, 3, 3)))
    files = [
        SimpleUploadedFile("a.png", picture_bytes("PNG", color=(1, 1, 1))),
        SimpleUploadedFile("b.gif", picture_bytes("GIF", color=(2, 2, 2))),
        SimpleUploadedFile("bad.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        SimpleUploadedFile("more.zip", archive.getvalue()),
    ]
    response = admin_client_.post("/admin/images/image/upload/", {"files": files, "tags": "admin, batch"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "3 created, 0 already stored, 1 rejected." in page
    assert "SVG is not an allowed format" in page
    assert "more.zip/inside/one.png" in page
    assert Image.objects.count() == 3
    assert all(image.tags == ["admin", "batch"] for image in Image.objects.all())
    assert {image.uploader.username for image in Image.objects.all()} == {"root"}


def test_upload_page_needs_add_permission():
    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_image"))
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/images/image/upload/").status_code == 403
    assert client.get("/admin/images/image/").status_code == 200


def test_changelist_filters_by_status_and_links_upload_and_progress(admin_client_):
    ready = image_ingest(data=picture_bytes("PNG", color=(4, 4, 4)), title="ready one").image
    image_ingest(data=picture_bytes("PNG", color=(5, 5, 5)), title="pending one")
    Image.objects.filter(pk=ready.pk).update(status=ImageStatus.FAILED, failure_reason="decoder exploded")
    page = admin_client_.get("/admin/images/image/", {"status__exact": "failed"}).content.decode()
    assert "ready one" in page
    assert "pending one" not in page
    assert "failed: decoder exploded" in page
    assert "/admin/images/image/upload/" in page
    assert "/admin/images/image/queue/" in page


def test_reembed_action_resets_and_queues(admin_client_, django_capture_on_commit_callbacks):
    image = image_ingest(data=picture_bytes("PNG")).image
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.FAILED, failure_reason="x")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client_.post("/admin/images/image/", {"action": "reembed", "_selected_action": [image.pk]})
    assert response.status_code == 302
    image.refresh_from_db()
    assert (image.status, image.failure_reason) == (ImageStatus.PENDING, "")
    assert [ids for ids, _ in embed_requests(callbacks)] == [[image.pk]]


def test_delete_action_removes_rows_and_files(admin_client_, django_capture_on_commit_callbacks, media_root):
    image = image_ingest(data=picture_bytes("PNG")).image
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(
            "/admin/images/image/", {"action": "delete_selected", "_selected_action": [image.pk], "post": "yes"}
        )
    assert response.status_code == 302
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


def test_queue_progress_page_shows_counts_and_queue_depths(admin_client_):
    image_ingest(data=picture_bytes("PNG", color=(6, 6, 6)))
    image_ingest(data=picture_bytes("PNG", color=(7, 7, 7)))
    page = admin_client_.get("/admin/images/image/queue/").content.decode()
    assert '<meta http-equiv="refresh" content="5">' in page
    assert 'status__exact=pending">2</a>' in page
    assert "<th>embed</th>" in page

"""The catalogue REST API: public reads with filters, permissioned uploads with per-file results, add by URL,
delete, and the generated OpenAPI schema."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from images.models import Image, ImageStatus
from images.services import image_ingest

from .pictures import picture_bytes
from .servers import local_server, send

pytestmark = pytest.mark.django_db


def user_with(*codenames: str, **fields):
    user = get_user_model().objects.create_user(f"user{get_user_model().objects.count()}", **fields)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="images", codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_listing_is_public_paginated_and_filtered():
    owner = user_with()
    big = image_ingest(data=picture_bytes("PNG", size=(800, 600)), tags=["beach", "sun"], uploader=owner).image
    small = image_ingest(data=picture_bytes("JPEG", size=(64, 64)), tags=["beach"]).image
    old = image_ingest(data=picture_bytes("PNG", size=(300, 300), color=(1, 1, 1)), tags=["snow"]).image
    Image.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30), status=ImageStatus.READY)
    client = client_for()

    def ids(**params) -> list[int]:
        response = client.get("/api/v1/images/", params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [small.pk, big.pk, old.pk]
    assert ids(tags="beach,sun") == [big.pk]
    assert ids(tags="BEACH") == [small.pk, big.pk]
    assert ids(image_format="jpeg") == [small.pk]
    assert ids(min_width=200, min_height=200) == [big.pk, old.pk]
    assert ids(status="ready") == [old.pk]
    assert ids(uploader=owner.username) == [big.pk]
    assert ids(uploader=str(owner.pk)) == [big.pk]
    assert ids(created_before=(timezone.now() - timedelta(days=1)).isoformat()) == [old.pk]
    page = client.get("/api/v1/images/", {"page_size": 2}).json()
    assert (page["count"], len(page["results"]), page["next"] is not None) == (3, 2, True)
    row = page["results"][0]
    assert row["thumbnail_url"].endswith(f"/media/{small.thumbnail.name}")
    assert row["tags"] == ["beach"]
    assert client.get("/api/v1/images/", {"status": "bogus"}).status_code == 400


def test_retrieve_and_missing_image():
    image = image_ingest(data=picture_bytes("PNG"), title="Red").image
    client = client_for()
    body = client.get(f"/api/v1/images/{image.pk}").json()
    assert (body["id"], body["title"], body["status"], body["format"]) == (image.pk, "Red", "pending", "PNG")
    missing = client.get("/api/v1/images/999999")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "There is no image 999999.", "code": "not_found"}


def test_upload_needs_permission():
    def post(client: APIClient) -> int:
        files = {"files": [upload("a.png", picture_bytes("PNG"))]}
        return client.post("/api/v1/images/", files, format="multipart").status_code

    assert post(client_for()) == 401
    assert post(client_for(user_with())) == 403
    assert Image.objects.count() == 0
    assert post(client_for(user_with(is_staff=True))) == 201


def test_upload_reports_each_file_so_a_client_can_retry_only_failures():
    client = client_for(user_with("add_image"))
    good = [upload("a.png", picture_bytes("PNG", color=(1, 0, 0))), upload("b.jpg", picture_bytes("JPEG"))]
    bad = upload("evil.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    # When two good files and one bad are sent together
    response = client.post(
        "/api/v1/images/", {"files": [*good, bad], "tags": "holiday, 2024", "title": "Trip"}, format="multipart"
    )
    # Then 207: the good ones are stored, the bad one is named with its reason
    assert response.status_code == 207
    body = response.json()
    assert body["counts"] == {"created": 2, "existing": 0, "rejected": 1}
    results = {row["filename"]: row for row in body["results"]}
    assert results["evil.svg"]["status"] == "rejected"
    assert results["evil.svg"]["reason"].startswith("SVG is not an allowed format")
    assert results["evil.svg"]["id"] is None
    assert results["a.png"]["status"] == "created"
    assert results["a.png"]["image"]["tags"] == ["holiday", "2024"]
    assert Image.objects.count() == 2
    # When the same good files are sent again, then 200 and "existing", no duplicates
    again = client.post("/api/v1/images/", {"files": [upload("a.png", picture_bytes("PNG", color=(1, 0, 0)))]},
                        format="multipart")  # fmt: skip
    assert again.status_code == 200
    assert again.json()["results"][0]["status"] == "existing"
    assert again.json()["results"][0]["id"] == results["a.png"]["id"]
    assert Image.objects.count() == 2
    # When every file is bad, then 400 with the same per-file shape
    only_bad = client.post("/api/v1/images/", {"files": [upload("x.jpg", b"")]}, format="multipart")
    assert only_bad.status_code == 400
    assert only_bad.json()["results"][0] == {"filename": "x.jpg", "status": "rejected", "id": None,
                                             "reason": "The file is empty.", "image": None}  # fmt: skip


def test_upload_of_a_zip_archive_ingests_each_member(settings):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("photos/one.png", picture_bytes("PNG", color=(5, 5, 5)))
        archive.writestr("photos/two.webp", picture_bytes("WEBP", color=(6, 6, 250)))
        archive.writestr("photos/notes.txt", b"not a picture")
        archive.writestr("__MACOSX/photos/._one.png", b"resource fork")
        archive.writestr("photos/huge.png", b"\0" * 5000)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4000
    response = client_for(user_with("add_image")).post(
        "/api/v1/images/", {"files": [upload("batch.zip", buffer.getvalue())]}, format="multipart"
    )
    assert response.status_code == 207
    statuses = {row["filename"]: (row["status"], row["reason"]) for row in response.json()["results"]}
    assert statuses["batch.zip/photos/one.png"] == ("created", "")
    assert statuses["batch.zip/photos/two.webp"] == ("created", "")
    assert statuses["batch.zip/photos/notes.txt"][0] == "rejected"
    assert statuses["batch.zip/photos/huge.png"] == ("rejected", "The file is over the limit of 4,000 bytes.")
    assert len(statuses) == 4
    assert sorted(Image.objects.values_list("original_filename", flat=True)) == ["one.png", "two.webp"]


def test_add_by_url(settings):
    png = picture_bytes("PNG", color=(7, 8, 9))
    with local_server({"/cat.png?w=700": lambda h: send(h, png)}) as server:
        client = client_for(user_with("add_image"))
        url = server.url("/cat.png?w=700")
        # Not allowlisted: the loopback server is refused with a clear 400
        refused = client.post("/api/v1/images/from-url", {"url": url}, format="json")
        assert refused.status_code == 400
        assert refused.json()["code"] == "fetch_rejected"
        assert "loopback" in refused.json()["detail"]
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{server.port}"]
        created = client.post("/api/v1/images/from-url", {"url": url, "title": "Cat", "tags": ["pets"]}, format="json")
        again = client.post("/api/v1/images/from-url", {"url": url}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["status"], body["image"]["source_url"], body["image"]["title"]) == ("created", url, "Cat")
    assert body["image"]["original_filename"] == "cat.png"
    assert (again.status_code, again.json()["status"]) == (200, "existing")
    assert Image.objects.count() == 1


def test_add_by_url_of_a_non_image_is_a_clear_400(settings):
    with local_server({"/page": lambda h: send(h, b"<html></html>", "text/html")}) as server:
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{server.port}"]
        response = client_for(user_with("add_image")).post(
            "/api/v1/images/from-url", {"url": server.url("/page")}, format="json"
        )
    assert response.status_code == 400
    assert response.json()["detail"] == "The content type is 'text/html', not an image."


def test_delete_needs_permission_and_removes_the_image(media_root):
    image = image_ingest(data=picture_bytes("PNG")).image
    assert client_for().delete(f"/api/v1/images/{image.pk}").status_code == 401
    assert client_for(user_with("add_image")).delete(f"/api/v1/images/{image.pk}").status_code == 403
    assert Image.objects.count() == 1
    response = client_for(user_with("delete_image")).delete(f"/api/v1/images/{image.pk}")
    assert response.status_code == 204
    assert Image.objects.count() == 0
    assert client_for(user_with("delete_image")).delete(f"/api/v1/images/{image.pk}").status_code == 404


def test_openapi_schema_documents_the_catalogue_operations():
    schema = client_for().get("/api/schema/", {"format": "json"}).json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/images/"])
    assert {"get", "delete"} <= set(schema["paths"]["/api/v1/images/{image_id}"])
    assert "post" in schema["paths"]["/api/v1/images/from-url"]
    upload_body = schema["paths"]["/api/v1/images/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    parameters = {p["name"] for p in schema["paths"]["/api/v1/images/"]["get"]["parameters"]}
    assert {"tags", "status", "image_format", "created_after", "min_width", "uploader", "page"} <= parameters

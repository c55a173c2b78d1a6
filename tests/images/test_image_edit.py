"""Editing an image's words over REST (PATCH) and in the admin: the description is stored, returned and at once
searchable; bad input is a 4xx with ``detail`` and ``code``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from images.models import Image, ImageText
from tests.search.test_search_fixtures import image_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor() -> APIClient:
    user = get_user_model().objects.create_user("editor", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="change_image"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_patch_sets_the_description_and_the_keyword_index_follows(editor):
    image = image_make(title="Harbour")
    response = editor.patch(f"/api/v1/images/{image.pk}", {"description": "  Fishing boats at dawn, Nazaré\n",
                                                            "tags": "Boats, sea"}, format="json")  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Fishing boats at dawn, Nazaré"
    assert body["tags"] == ["boats", "sea"]
    assert body["title"] == "Harbour"  # untouched
    text = ImageText.objects.get(image=image)
    assert (text.description, text.tags) == ("Fishing boats at dawn, Nazaré", "boats sea")
    search = APIClient().get("/api/v1/search", {"q": "desc:nazare", "mode": "keyword"}).json()
    assert [hit["image"]["id"] for hit in search["results"]] == [image.pk]


def test_patch_refuses_strangers_unknown_fields_and_bad_values(editor):
    image = image_make(title="Harbour")
    anonymous = APIClient().patch(f"/api/v1/images/{image.pk}", {"description": "x"}, format="json")
    assert anonymous.status_code in (401, 403)
    assert set(anonymous.json()) >= {"detail", "code"}
    unknown = editor.patch(f"/api/v1/images/{image.pk}", {"descripton": "x"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_parameter"
    bad = editor.patch(f"/api/v1/images/{image.pk}", {"source_link": "not a link"}, format="json")
    assert bad.status_code == 400
    assert "source_link" in bad.json()["fields"]
    missing = editor.patch("/api/v1/images/999999", {"description": "x"}, format="json")
    assert missing.status_code == 404
    assert Image.objects.get(pk=image.pk).description == ""


def test_the_admin_edits_the_description(admin_client):
    image = image_make(title="Harbour")
    page = admin_client.get(f"/admin/images/image/{image.pk}/change/")
    assert page.status_code == 200
    assert b'name="description"' in page.content

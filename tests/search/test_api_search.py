"""REST search: GET/POST /api/v1/search, /api/v1/images/{id}/similar, /api/v1/status, permissions and schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from images.models import Image, ImageStatus
from search.models import SearchModel, SearchModelState
from tests.search.test_search_fixtures import HAND_MODEL_KEY, embedding_add, image_make, unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hand_model(monkeypatch: pytest.MonkeyPatch, settings) -> None:
    from django.core.cache import cache

    from search.index import reader_reset
    from search.state import active_model_key_forget

    SearchModel.objects.create(
        model_key=HAND_MODEL_KEY, model_id="/nonexistent/hand-made-model", state=SearchModelState.ACTIVE
    )
    active_model_key_forget()
    reader_reset()
    # Throttling is tested on its own below; the other tests must not trip over each other's request counts.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "100000/min", "read": "100000/min"})
    cache.delete_many([f"throttle_search_{ip}" for ip in ("127.0.0.1",)])
    yield
    active_model_key_forget()
    reader_reset()


@pytest.fixture
def catalogue() -> list[Image]:
    images = []
    for i, vector in enumerate([[1, 0, 0], [0.9, 0.1, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]]):
        image = image_make(title=f"pic {i}", tags=["even"] if i % 2 == 0 else ["odd"])
        embedding_add(image, unit(vector))
        images.append(image)
    return images


def test_get_search_with_query_syntax_returns_scored_hydrated_hits(catalogue: list[Image]) -> None:
    # given the catalogue / when searching like image 0 minus image 3
    first, fourth = catalogue[0].pk, catalogue[3].pk
    response = APIClient().get("/api/v1/search", {"q": f"image:{first} - image:{fourth}", "limit": 4})
    # then 200 with the three best, scores descending, each with its image record and links
    assert response.status_code == 200, response.content
    body = response.json()
    # (pics 2 and 4 tie at 0 and keep id order; pic 3, the subtracted one, is last and left for the next page)
    assert [r["image"]["id"] for r in body["results"]] == [first, catalogue[1].pk, catalogue[2].pk, catalogue[4].pk]
    assert body["results"][0]["score"] > body["results"][1]["score"] > body["results"][2]["score"]
    assert body["results"][0]["image"]["page_url"] == f"/images/{first}/"
    assert body["results"][0]["image"]["similar_url"] == f"/api/v1/images/{first}/similar"
    assert body["results"][0]["image"]["thumbnail_url"].startswith("/media/thumbnails/")
    assert body["has_more"] is True
    assert body["next_offset"] == 4


def test_get_search_filters_and_pagination(catalogue: list[Image]) -> None:
    client = APIClient()
    response = client.get("/api/v1/search", {"q": f"image:{catalogue[0].pk}", "tags": "even", "limit": 2})
    assert [r["image"]["title"] for r in response.json()["results"]] == ["pic 0", "pic 2"]
    second = client.get("/api/v1/search", {"q": f"image:{catalogue[0].pk}", "tags": "even", "limit": 2, "offset": 2})
    assert [r["image"]["title"] for r in second.json()["results"]] == ["pic 4"]
    assert second.json()["has_more"] is False


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"q": "beach +"}, 400, "ends with '+'"),
        ({"q": "- image:1"}, 400, "only negative terms"),
        ({"q": "image:99999"}, 400, "does not exist"),
        ({"q": "x" * 5000}, 400, "the limit is 2000"),
        ({"q": " + ".join(["a"] * 10_000)}, 400, "limit is"),
        ({"q": ""}, 400, "q"),
        ({"q": "image:1", "limit": 1000}, 400, "limit"),
        ({"q": "image:1", "sort": "random"}, 400, "sort"),
        ({"q": "image:1", "min_score": "high"}, 400, "min_score"),
    ],
)
def test_bad_queries_are_400_with_a_message_never_500(
    catalogue: list[Image], params: dict, status: int, fragment: str
) -> None:
    response = APIClient().get("/api/v1/search", params)
    assert response.status_code == status
    assert fragment in response.content.decode()


def test_post_json_terms_with_weights(catalogue: list[Image]) -> None:
    body = {
        "terms": [{"image_id": catalogue[2].pk, "weight": 1}, {"image_id": catalogue[3].pk, "weight": -0.9}],
        "limit": 2,
        "collapse": False,
    }
    response = APIClient().post("/api/v1/search", body, format="json")
    assert response.status_code == 200, response.content
    assert [r["image"]["title"] for r in response.json()["results"]] == ["pic 0", "pic 1"]


def test_post_json_with_ten_thousand_terms_is_refused(catalogue: list[Image]) -> None:
    body = {"terms": [{"text": "a"}] * 10_000}
    response = APIClient().post("/api/v1/search", body, format="json")
    assert response.status_code == 400
    assert "no more than 16" in response.content.decode()


def test_post_json_term_needs_exactly_one_kind(catalogue: list[Image]) -> None:
    response = APIClient().post("/api/v1/search", {"terms": [{"weight": 1}]}, format="json")
    assert response.status_code == 400
    assert "exactly one of text, image_id or url" in response.content.decode()


def test_post_multipart_that_is_not_a_picture_is_400(catalogue: list[Image]) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("notes.png", b"this is not an image", content_type="image/png")
    response = APIClient().post("/api/v1/search", {"image": upload}, format="multipart")
    # then refused before any model is loaded, saying why
    assert response.status_code == 400
    assert "not a readable image" in response.json()["detail"]


def test_similar_excludes_the_image_itself_and_404s_for_unknown(catalogue: list[Image]) -> None:
    response = APIClient().get(f"/api/v1/images/{catalogue[0].pk}/similar", {"limit": 2})
    assert response.status_code == 200
    assert [r["image"]["title"] for r in response.json()["results"]] == ["pic 1", "pic 2"]
    assert APIClient().get("/api/v1/images/999999/similar").status_code == 404
    Image.objects.filter(pk=catalogue[1].pk).update(status=ImageStatus.PENDING)
    assert APIClient().get(f"/api/v1/images/{catalogue[1].pk}/similar").status_code == 404


def _clients() -> dict[str, APIClient]:
    users = get_user_model().objects
    member = users.create_user("member")
    staff = users.create_user("staff", is_staff=True)
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=member).key}")
    session_client = APIClient()
    session_client.force_login(staff)
    return {"anonymous": APIClient(), "token": token_client, "session-staff": session_client}


@pytest.mark.parametrize("public", [True, False])
def test_permissions_for_every_endpoint_and_role(catalogue: list[Image], public: bool) -> None:
    pk = catalogue[0].pk
    with override_settings(SEMSEARCH_SEARCH_PUBLIC=public):
        for role, client in _clients().items():
            calls = {
                "search GET": client.get("/api/v1/search", {"q": f"image:{pk}"}),
                "search POST": client.post("/api/v1/search", {"q": f"image:{pk}"}, format="json"),
                "similar": client.get(f"/api/v1/images/{pk}/similar"),
                "status": client.get("/api/v1/status"),  # private too when reading is
            }
            for name, response in calls.items():
                allowed = public or role != "anonymous"
                expected = {200} if allowed else {401, 403}
                assert response.status_code in expected, (role, name, response.status_code, response.content)
        if not public:
            refused = APIClient().get("/api/v1/search", {"q": f"image:{pk}"})
            assert "Reading is private" in refused.json()["detail"]


def test_search_is_throttled_by_scope(catalogue: list[Image], monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "2/min", "read": "100/min"})
    cache.delete("throttle_search_127.0.0.1")
    client = APIClient(REMOTE_ADDR="127.0.0.1")
    codes = [client.get("/api/v1/search", {"q": f"image:{catalogue[0].pk}"}).status_code for _ in range(3)]
    cache.delete("throttle_search_127.0.0.1")
    assert codes == [200, 200, 429]


def test_status_reports_counts(catalogue: list[Image]) -> None:
    body = APIClient().get("/api/v1/status").json()
    assert body["images"]["ready"] == 5
    assert set(body) >= {"model", "index", "images", "queues"}


def test_generated_openapi_schema_is_valid_and_complete(tmp_path: Path) -> None:
    # given the whole project's API / when drf-spectacular generates and validates the schema, failing on warnings
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = target.read_text()
    # then our operations are all documented with their parameters
    for operation in (
        "operationId: search\n",
        "operationId: search_post",
        "operationId: images_similar",
        "operationId: status",
    ):
        assert operation in schema
    for parameter in ("name: q", "name: min_score", "name: relative_margin", "name: collapse", "name: tags"):
        assert parameter in schema


def test_get_options_reach_the_search(catalogue: list[Image]) -> None:
    from search.models import Embedding

    # given a near-copy of pic 0, added last
    copy = image_make(title="pic 0 copy")
    Embedding.objects.create(
        image=copy, model_key=HAND_MODEL_KEY, dimension=8, vector=unit([1, 0.001, 0]).astype("<f4").tobytes()
    )
    client, q = APIClient(), f"image:{catalogue[0].pk}"
    collapsed = client.get("/api/v1/search", {"q": q, "collapse": "true", "limit": 2}).json()["results"]
    assert collapsed[0]["duplicate_ids"] == [copy.pk, catalogue[1].pk]  # pic 1 is within cosine 0.97 too
    strict = {"q": q, "collapse": "true", "collapse_threshold": 0.999, "limit": 2}
    collapsed = client.get("/api/v1/search", strict).json()["results"]
    assert collapsed[0]["duplicate_ids"] == [copy.pk]
    assert collapsed[0]["duplicates"] == 1
    newest = client.get("/api/v1/search", {"q": q, "sort": "date", "min_score": 0.5}).json()["results"]
    assert [r["image"]["title"] for r in newest] == ["pic 0 copy", "pic 2", "pic 1", "pic 0"]
    near = client.get("/api/v1/search", {"q": q, "relative_margin": 0.001}).json()["results"]
    assert {r["image"]["title"] for r in near} == {"pic 0", "pic 0 copy"}


def test_text_search_without_a_loadable_model_is_503_with_the_reason(catalogue: list[Image]) -> None:
    response = APIClient().get("/api/v1/search", {"q": "a red circle"})
    assert response.status_code == 503
    assert "cannot be loaded" in response.json()["detail"]
    assert "SEMSEARCH_MODEL_ID" in response.json()["detail"]


def test_hit_image_record_matches_the_catalogue_row_on_every_endpoint(catalogue: list[Image]) -> None:
    # given an image with an uploader, a file name but no title, source links and tags, like image 0
    user = get_user_model().objects.create_user("ansel", password="pw")
    untitled = image_make(tags=["b", "a"], uploader=user)
    Image.objects.filter(pk=untitled.pk).update(
        title="", original_filename="IMG_2041.JPG", attribution="Ansel", source_url="https://e.org/p.jpg",
        source_link="https://e.org/p",
    )  # fmt: skip
    embedding_add(untitled, unit([1, 0.001, 0]))
    row = Image.objects.get(pk=untitled.pk)
    expected = {
        "id": row.pk, "title": "IMG_2041.JPG", "width": 640, "height": 480, "format": "PNG", "tags": ["b", "a"],
        "attribution": "Ansel", "source_link": "https://e.org/p", "source_url": "https://e.org/p.jpg",
        "uploader": "ansel", "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        "thumbnail_url": f"/media/{row.thumbnail.name}", "original_url": f"/media/{row.original.name}",
        "page_url": f"/images/{row.pk}/", "similar_url": f"/api/v1/images/{row.pk}/similar",
    }  # fmt: skip
    client = APIClient()
    # when it is found by a search and by "more like image 0"
    searched = client.get("/api/v1/search", {"q": f"image:{catalogue[0].pk}", "limit": 2}).json()["results"]
    similar = client.get(f"/api/v1/images/{catalogue[0].pk}/similar", {"limit": 1}).json()["results"]
    # then both show exactly its record: file name for the missing title, the uploader's name, UTC time with Z
    assert searched[1]["image"] == expected
    assert similar[0]["image"] == expected

"""The server-rendered pages through Django's test client: states, results grid, errors, filters, pages, detail."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from images.models import Image
from search.models import SearchModel, SearchModelState
from tests.search.test_search_fixtures import HAND_MODEL_KEY, embedding_add, image_make, unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_model_loading(settings) -> None:
    """A model that fails at once: the status line must not start loading a real model in the background."""
    settings.SEMSEARCH_MODEL_ID = "/nonexistent/configured-model"


@pytest.fixture
def hand_model() -> SearchModel:
    from search.index import reader_reset
    from search.state import active_model_key_forget

    model = SearchModel.objects.create(
        model_key=HAND_MODEL_KEY, model_id="/nonexistent/hand-made-model", state=SearchModelState.ACTIVE
    )
    active_model_key_forget()
    reader_reset()
    yield model
    active_model_key_forget()
    reader_reset()


@pytest.fixture
def catalogue(hand_model: SearchModel) -> list[Image]:
    images = []
    for i in range(30):
        image = image_make(title=f"pic {i}", tags=["blue"] if i % 3 == 0 else [], format="JPEG" if i % 2 else "PNG")
        embedding_add(image, unit([1.0, i / 10.0, 0]))
        images.append(image)
    return images


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-image-id="(\d+)"', html)]


def test_empty_catalogue_explains_how_to_add_images(db: None) -> None:
    html = Client().get("/").content.decode()
    assert 'id="empty-index"' in html
    assert "make demo" in html
    assert "POST /api/v1/images" in html
    assert 'id="status-line"' in html


def test_pending_images_are_explained(db: None) -> None:
    image_make(status="pending")
    html = Client().get("/").content.decode()
    assert "1 image is being processed" in html


def test_unavailable_model_is_explained_and_more_like_this_still_works(catalogue: list[Image]) -> None:
    # given a model that cannot load (its folder does not exist)
    html = Client().get("/").content.decode()
    assert 'id="model-unavailable"' in html
    assert "SEMSEARCH_MODEL_ID" in html
    # when searching by an image id / then results still come from stored vectors
    response = Client().get("/", {"q": f"image:{catalogue[0].pk}"})
    assert response.status_code == 200
    assert _ids(response.content.decode())[0] == catalogue[0].pk


def test_results_grid_has_scores_thumbnails_more_like_this_and_lazy_images(catalogue: list[Image]) -> None:
    html = Client().get("/", {"q": f"image:{catalogue[5].pk}"}).content.decode()
    assert _ids(html)[:3] == [catalogue[5].pk, catalogue[6].pk, catalogue[4].pk]
    assert len(_ids(html)) == 24
    assert 'class="score"' in html
    assert ">1.000<" in html
    assert 'loading="lazy"' in html
    assert f'href="/?q=image:{catalogue[4].pk}"' in html  # "More like this" on every hit
    assert 'rel="next"' in html
    assert "offset=24" in html


def test_second_page_continues_the_first(catalogue: list[Image]) -> None:
    client = Client()
    first = _ids(client.get("/", {"q": f"image:{catalogue[0].pk}"}).content.decode())
    second = _ids(client.get("/", {"q": f"image:{catalogue[0].pk}", "offset": 24}).content.decode())
    assert len(second) == 6
    assert not set(first) & set(second)


def test_filters_from_the_form_apply(catalogue: list[Image]) -> None:
    html = Client().get("/", {"q": f"image:{catalogue[0].pk}", "tags": "blue", "format": "PNG"}).content.decode()
    expected = [image.pk for i, image in enumerate(catalogue) if i % 3 == 0 and i % 2 == 0]
    assert _ids(html) == expected
    assert '<details class="filters" open>' in html


def test_malformed_query_shows_the_message_with_400(catalogue: list[Image]) -> None:
    response = Client().get("/", {"q": "beach + - sunset"})
    assert response.status_code == 400
    assert "Two operators in a row" in response.content.decode()


def test_bad_filter_value_shows_a_message(catalogue: list[Image]) -> None:
    response = Client().get("/", {"q": f"image:{catalogue[0].pk}", "min_score": "5"})
    assert response.status_code == 400
    assert "min score" in response.content.decode()


def test_post_without_picture_redirects_to_the_get_search(catalogue: list[Image]) -> None:
    response = Client().post("/", {"q": "image:1", "tags": "", "sort": "score"})
    assert response.status_code == 303
    assert response["Location"] == "/?q=image%3A1&sort=score"


def test_expired_picture_token_asks_for_the_picture_again(catalogue: list[Image]) -> None:
    html = Client().get("/", {"picture": "no-such-token"}).content.decode()
    assert "has expired; add it again" in html


def test_detail_page_shows_metadata_and_similar_images(catalogue: list[Image]) -> None:
    Image.objects.filter(pk=catalogue[3].pk).update(attribution="Photo by Ada", source_link="https://example.com/p/3")
    html = Client().get(f"/images/{catalogue[3].pk}/").content.decode()
    assert "Photo by Ada" in html
    assert "https://example.com/p/3" in html
    assert f"image:{catalogue[3].pk}" in html
    similar = _ids(html)
    assert catalogue[3].pk not in similar
    assert similar[:2] == [catalogue[2].pk, catalogue[4].pk] or similar[:2] == [catalogue[4].pk, catalogue[2].pk]
    assert Client().get("/images/999999/").status_code == 404


def test_home_without_a_query_shows_recent_images_without_scores(catalogue: list[Image]) -> None:
    html = Client().get("/").content.decode()
    assert 'id="recent"' in html
    assert _ids(html) == [image.pk for image in reversed(catalogue)][:12]
    assert 'class="score"' not in html


def test_private_search_sends_anonymous_visitors_to_sign_in(catalogue: list[Image], settings) -> None:
    from django.contrib.auth import get_user_model

    settings.SEMSEARCH_SEARCH_PUBLIC = False
    for url in ("/", f"/images/{catalogue[0].pk}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    member = Client()
    member.force_login(get_user_model().objects.create_user("member"))
    assert member.get("/", {"q": f"image:{catalogue[0].pk}"}).status_code == 200


def test_text_search_without_a_loadable_model_explains_on_the_page(catalogue: list[Image]) -> None:
    response = Client().get("/", {"q": "a red circle"})
    assert response.status_code == 503
    assert "cannot be loaded" in response.content.decode()

"""Ranking with the real (toy) model: text, negation, weights, pictures, the Python API, REST uploads, the cache."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from images.models import Image
from search.python_api import SemanticSearcher
from search.query import QueryError, query_parse
from search.services import query_vectors
from search.services.query_vectors import TEXT_VECTOR_CACHE
from search.state import active_model_key
from tests.search.test_search_fixtures import toy_corpus, toy_model_use, toy_picture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(settings) -> list[Image]:
    toy_model_use(settings)
    return toy_corpus()


def _tags(hits) -> list[tuple[str, str]]:
    return [tuple(hit.image.tags) for hit in hits]


def test_text_query_finds_the_described_picture(corpus: list[Image]) -> None:
    # (the toy model was trained on whole captions, so it is queried with one)
    hits = SemanticSearcher().search("a red circle in the centre on a white background", k=3)
    assert _tags(hits)[0] == ("circle", "red")
    assert all(isinstance(hit.score, float) for hit in hits)
    assert hits[0].score > hits[1].score


def test_subtracting_a_concept_ranks_red_non_circles_first(corpus: list[Image]) -> None:
    # given one picture per (shape, colour) / when searching `red circle - circle`
    hits = SemanticSearcher().search("red circle - circle", k=3)
    # then the best hits are red, and none of them is the circle
    assert [colour for _, colour in _tags(hits)] == ["red", "red", "red"]
    assert all(kind != "circle" for kind, _ in _tags(hits))


def test_subtracting_a_colour_ranks_other_coloured_circles_first(corpus: list[Image]) -> None:
    plain = SemanticSearcher().search("circle", k=8)
    hits = SemanticSearcher().search("circle - red", k=5)
    assert ("circle", "red") in _tags(plain)
    assert [kind for kind, _ in _tags(hits)][:2] == ["circle", "circle"]
    assert all(colour != "red" for _, colour in _tags(hits))


def test_weights_shift_the_balance_between_terms(corpus: list[Image]) -> None:
    searcher = SemanticSearcher()
    star_heavy = searcher.search("0.3 * blue + star", k=4)
    blue_heavy = searcher.search("blue + 0.3 * star", k=4)
    assert sum(kind == "star" for kind, _ in _tags(star_heavy)) > sum(kind == "star" for kind, _ in _tags(blue_heavy))
    assert sum(c == "blue" for _, c in _tags(blue_heavy)) > sum(c == "blue" for _, c in _tags(star_heavy))


def test_picture_and_image_id_queries(corpus: list[Image]) -> None:
    import io

    from PIL import Image as PILImage

    searcher = SemanticSearcher()
    # a new rendering (different seed) of a green triangle finds the stored green triangle
    data = toy_picture_bytes(kind="triangle", colour="green", seed=999)
    assert _tags(searcher.search(PILImage.open(io.BytesIO(data)), k=1)) == [("triangle", "green")]
    assert _tags(searcher.search(data, k=1)) == [("triangle", "green")]
    # an image id uses the stored vector: the image itself comes first with score ~1
    target = corpus[7]
    hits = searcher.search(target.pk, k=2)
    assert hits[0].image.pk == target.pk
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    # and "image + text" mixes both
    mixed = searcher.search(f"image:{target.pk} - {target.tags[1]} + yellow", k=1)
    assert _tags(mixed)[0] == (target.tags[0], "yellow")


def test_searcher_accepts_a_path_and_filters(corpus: list[Image], tmp_path) -> None:
    path = tmp_path / "query.png"
    path.write_bytes(toy_picture_bytes(kind="star", colour="blue", seed=4242))
    searcher = SemanticSearcher(model_id="toy")
    assert _tags(searcher.search(path, k=1)) == [("star", "blue")]
    assert _tags(searcher.search(str(path), k=1)) == [("star", "blue")]
    only_squares = searcher.search(path, k=10, tags=["square"])
    assert {kind for kind, _ in _tags(only_squares)} == {"square"}
    assert len(only_squares) == 4
    assert _tags(only_squares)[0] == ("square", "blue")


def test_encode_returns_the_normalised_query_vector(corpus: list[Image]) -> None:
    import numpy as np

    vector = SemanticSearcher().encode("red circle - circle")
    assert vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(QueryError, match="only negative"):
        SemanticSearcher().encode("- circle")


def test_repeated_short_text_is_served_from_the_cache(corpus: list[Image]) -> None:
    TEXT_VECTOR_CACHE.clear()
    searcher = SemanticSearcher()
    first = searcher.search("a yellow cross", k=3)
    hits_before = TEXT_VECTOR_CACHE.hits
    second = searcher.search("a yellow cross", k=3)
    assert TEXT_VECTOR_CACHE.hits == hits_before + 1
    assert [h.image.pk for h in first] == [h.image.pk for h in second]


def test_a_prefetched_text_is_cached_once_waited_for(corpus: list[Image]) -> None:
    SemanticSearcher().encode("warm the model up")
    TEXT_VECTOR_CACHE.clear()
    terms = query_parse(text="a green triangle")
    cached = [(active_model_key(), term.text) for term in terms]
    # when a hybrid query's text is prefetched on the inference thread and waited for
    query_vectors.text_vectors_prefetch(terms=terms)()
    # then its vectors are in the text cache
    assert all(key in TEXT_VECTOR_CACHE for key in cached)


def test_over_long_text_is_truncated_with_a_notice(corpus: list[Image]) -> None:
    page = SemanticSearcher().search_page(" ".join(["red circle"] * 140)[:299], k=1)
    assert any("longer than the model reads" in notice for notice in page.notices)


def test_rest_multipart_picture_with_text(corpus: list[Image]) -> None:
    upload = SimpleUploadedFile("q.png", toy_picture_bytes(kind="square", colour="red", seed=77), "image/png")
    response = APIClient().post("/api/v1/search", {"image": upload, "limit": 2}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["image"]["tags"] == ["square", "red"]
    upload = SimpleUploadedFile("q.png", toy_picture_bytes(kind="square", colour="red", seed=77), "image/png")
    mixed = APIClient().post("/api/v1/search", {"image": upload, "q": "- red", "limit": 4}, format="multipart")
    tags = [result["image"]["tags"] for result in mixed.json()["results"]]
    assert [kind for kind, _ in tags[:2]] == ["square", "square"]
    assert all(colour != "red" for _, colour in tags)


def test_rest_text_search_and_url_terms_are_guarded(corpus: list[Image]) -> None:
    response = APIClient().get("/api/v1/search", {"q": '"a green star"', "limit": 1})
    assert response.json()["results"][0]["image"]["tags"] == ["star", "green"]
    # URL terms: refused for anonymous callers (the default), and for a signed-in one when the address is private
    anonymous = APIClient().get("/api/v1/search", {"q": "http://127.0.0.1:1/secret.png"})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "url_terms_need_account")
    signed_in = APIClient()
    signed_in.force_authenticate(get_user_model().objects.create_user("reader", password="pw-reader-1"))
    refused = signed_in.get("/api/v1/search", {"q": "http://127.0.0.1:1/secret.png"})
    assert refused.status_code == 400
    assert "could not be used" in refused.json()["detail"]


def test_web_picture_upload_redirects_to_a_shareable_search(corpus: list[Image]) -> None:
    client = Client()
    upload = SimpleUploadedFile("q.png", toy_picture_bytes(kind="cross", colour="green", seed=3), "image/png")
    response = client.post("/", {"image": upload, "q": ""})
    assert response.status_code == 303
    assert "picture=" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert "Searching with your picture" in page
    assert "data:image/jpeg;base64," in page
    assert "a green cross in the centre" in page.split('class="grid"')[1][:3000]

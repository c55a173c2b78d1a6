"""Hybrid search with the real (toy) model: words the pictures cannot show, pictures the words do not describe,
and both; field terms; every option in every mode; the REST API's additions and its 400s; the fusion functions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from images.models import Image
from search.python_api import SemanticSearcher
from search.query import QueryError
from search.services import search_hybrid
from search.services.search_fusion import fuse_rrf, fuse_scores
from tests.search.test_search_fixtures import toy_corpus, toy_model_use

pytestmark = pytest.mark.django_db
PHOTOGRAPHERS = ("Michelle Spencer", "Jeff Sheldon", "Ansel Adams")


@pytest.fixture
def corpus(settings) -> list[Image]:
    """One picture per (shape, colour), titled by place only and tagged ``demo`` (no shape or colour words), by
    three photographers; the red circle is Jeff Sheldon's. ``image.look`` is its (kind, colour)."""
    toy_model_use(settings)
    images = toy_corpus()
    for n, image in enumerate(images):
        look = tuple(image.tags)
        by = "Jeff Sheldon" if look == ("circle", "red") else PHOTOGRAPHERS[n % 3]
        Image.objects.filter(pk=image.pk).update(
            title=f"Holiday in {('Lisbon', 'Porto', 'Faro')[n % 3]}", tags=["demo"], attribution=by,
            original_filename=f"IMG_{2000 + n}.JPG",
        )  # fmt: skip
        image.refresh_from_db()
        image.look = look
    return images


def _by(hits) -> list[str]:
    return [hit.image.attribution for hit in hits]


def test_a_photographer_only_the_words_know_comes_first_in_hybrid_not_in_semantic(corpus):
    searcher = SemanticSearcher()
    count = Image.objects.filter(attribution="Michelle Spencer").count()
    hybrid = searcher.search("Michelle Spencer", k=count)
    semantic = searcher.search("Michelle Spencer", k=count, mode="semantic")
    assert _by(hybrid) == ["Michelle Spencer"] * count
    assert _by(semantic).count("Michelle Spencer") < count
    first = hybrid[0]
    assert first.keyword_score is not None
    assert first.semantic_score is not None
    assert [m.field for m in first.matches] == ["attribution"]
    assert first.matches[0].highlight == "<mark>Michelle</mark> <mark>Spencer</mark>"


@pytest.mark.parametrize("depth", [100, 2])
def test_every_hybrid_hit_shows_its_cosine_however_deep_the_semantic_side_looks(corpus, monkeypatch, depth):
    # given a semantic side as deep as the catalogue, or so shallow that most keyword hits are not in it
    monkeypatch.setattr(search_hybrid, "FUSION_DEPTH", depth)
    searcher = SemanticSearcher()
    count = Image.objects.filter(attribution="Michelle Spencer").count()
    hits = searcher.search("Michelle Spencer", k=count)
    # then every hit still shows its cosine, the one semantic mode gives it
    cosines = {hit.image.pk: hit.semantic_score for hit in searcher.search("Michelle Spencer", k=100, mode="semantic")}
    assert _by(hits) == ["Michelle Spencer"] * count
    assert [hit.semantic_score for hit in hits] == pytest.approx([cosines[hit.image.pk] for hit in hits], abs=1e-5)


def test_an_id_like_file_name_finds_exactly_its_picture(corpus):
    hits = SemanticSearcher().search("IMG_2007", k=3)
    assert hits[0].image.original_filename == "IMG_2007.JPG"
    assert hits[0].matches[0].field == "filename"


def test_a_mixed_query_needs_both_sides(corpus):
    # given the red circle is Jeff Sheldon's: semantic alone puts it first; keyword alone ties all her pictures
    caption = '"a red circle in the centre on a white background"'
    searcher = SemanticSearcher()
    assert searcher.search(caption, k=1, mode="semantic")[0].image.attribution == "Jeff Sheldon"
    closest_of_hers = searcher.search(f'{caption} + Michelle Spencer by:"Michelle Spencer"', k=1, mode="semantic")[0]
    # when asking for both, her picture that looks most like a red circle comes first
    hits = searcher.search(f"{caption} + Michelle Spencer", k=3)
    assert hits[0].image.pk == closest_of_hers.image.pk
    assert hits[0].semantic_score is not None
    assert hits[0].keyword_score is not None


def test_field_terms_restrict_every_mode(corpus):
    searcher = SemanticSearcher()
    spencer = set(Image.objects.filter(attribution="Michelle Spencer").values_list("pk", flat=True))
    for mode in ("hybrid", "semantic"):
        hits = searcher.search('a red circle in the centre on a white background by:"Michelle Spencer"', k=50,
                               mode=mode)  # fmt: skip
        assert {h.image.pk for h in hits} == spencer, mode
        hits = searcher.search("a red circle in the centre on a white background -by:Spencer", k=50, mode=mode)
        assert not {h.image.pk for h in hits} & spencer, mode
    keyword = searcher.search('by:"Michelle Spencer" title:lisbon', k=50, mode="keyword")
    assert {h.image.pk for h in keyword} == {
        i.pk for i in Image.objects.filter(attribution="Michelle Spencer", title__contains="Lisbon")
    }


def test_paging_date_sort_collapse_and_cut_offs_in_hybrid_and_keyword_modes(corpus):
    searcher = SemanticSearcher()
    for mode in ("hybrid", "keyword"):
        whole = searcher.search_page("Lisbon Porto", k=12, mode=mode)
        first = searcher.search_page("Lisbon Porto", k=6, mode=mode)
        second = searcher.search_page("Lisbon Porto", k=6, offset=6, mode=mode)
        assert [h.image.pk for h in first.hits + second.hits] == [h.image.pk for h in whole.hits], mode
        assert first.has_more
        assert first.next_offset == 6
        scores = [h.score for h in whole.hits]
        assert scores == sorted(scores, reverse=True)
        by_date = searcher.search("Lisbon", k=50, mode=mode, sort="date")
        assert [h.image.created_at for h in by_date] == sorted((h.image.created_at for h in by_date), reverse=True)
        cut = searcher.search("Lisbon Porto", k=50, mode=mode, relative_margin=0.0)
        assert cut
        assert all(h.score == pytest.approx(cut[0].score) for h in cut)
        floor = searcher.search("Lisbon Porto", k=50, mode=mode, min_score=scores[3])
        assert all(h.score >= scores[3] for h in floor)
        assert len(floor) >= 4
        collapsed = searcher.search("Lisbon", k=50, mode=mode, collapse=True)
        assert {h.image.pk for h in collapsed} | {d for h in collapsed for d in h.duplicate_ids} == {
            h.image.pk for h in searcher.search("Lisbon", k=50, mode=mode)
        }
        tagged = searcher.search("Lisbon", k=50, mode=mode, tags=["nothing-has-this"])
        assert tagged == []


def test_mode_mistakes_are_query_errors(corpus):
    searcher = SemanticSearcher()
    with pytest.raises(QueryError, match="Keyword mode searches words only"):
        searcher.search(f"image:{corpus[0].pk}", mode="keyword")
    with pytest.raises(QueryError, match="Semantic mode needs a text or picture term"):
        searcher.search('by:"Michelle Spencer"', mode="semantic")
    with pytest.raises(QueryError, match="mode must be one of"):
        searcher.search("Lisbon", mode="fuzzy")
    # a query of image ids only is plain semantic in hybrid mode
    page = searcher.search_page(corpus[0].pk, k=3)
    assert page.mode == "semantic"
    assert page.hits[0].image.pk == corpus[0].pk


def test_rest_search_reports_mode_and_why_each_hit_matched(corpus):
    client = APIClient()
    body = client.get("/api/v1/search", {"q": 'by:"Ansel Adams" Faro', "mode": "keyword", "limit": 3}).json()
    assert body["mode"] == "keyword"
    hit = body["results"][0]
    assert hit["image"]["attribution"] == "Ansel Adams"
    assert {m["field"] for m in hit["matched"]} == {"attribution", "title"}
    assert hit["semantic_score"] is None
    assert 0 < hit["keyword_score"] <= 1
    default = client.get("/api/v1/search", {"q": "Faro"}).json()
    assert default["mode"] == "hybrid"
    assert default["results"][0]["semantic_score"] is not None
    posted = client.post("/api/v1/search", {"terms": [{"field": "by", "text": "Jeff Sheldon"}], "mode": "keyword"},
                         format="json").json()  # fmt: skip
    assert {r["image"]["attribution"] for r in posted["results"]} == {"Jeff Sheldon"}


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"q": "by:"}, "invalid_query", 'by: at character 1 needs a word or a "quoted phrase"'),
        ({"q": 'by:"Michelle'}, "invalid_query", "has no closing quote"),
        ({"q": "auther:adams"}, "invalid_query", "Unknown field 'auther'"),
        ({"q": "Faro", "mode": "fuzzy"}, "invalid", "mode"),
        ({"q": "image:1", "mode": "keyword"}, "invalid_query", "Keyword mode searches words only"),
    ],
)
def test_malformed_keyword_input_is_a_precise_400(corpus, params, code, words):
    response = APIClient().get("/api/v1/search", params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert words in body["detail"]


def test_the_schema_documents_the_additions(corpus):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/search"]["get"]["parameters"]}
    assert parameters["mode"]["schema"]["enum"] == ["hybrid", "semantic", "keyword"]
    hit = schema["components"]["schemas"]["Hit"]["properties"]
    assert {"semantic_score", "keyword_score", "matched"} <= set(hit)
    assert "description" in schema["components"]["schemas"]["PatchedImageUpdateRequest"]["properties"]


def test_rrf_keeps_a_single_ranking_and_rewards_agreement():
    alone = fuse_rrf(semantic=[(3, 0.9), (1, 0.8), (2, 0.7)], keyword=[])
    assert alone == pytest.approx({3: 1.0, 1: 61 / 62, 2: 61 / 63})
    fused = fuse_rrf(semantic=[(1, 0.9), (2, 0.8), (3, 0.7)], keyword=[(3, 1.0), (9, 0.5)])
    assert max(fused, key=fused.__getitem__) == 3  # in both lists beats first in one
    assert min(fused.values()) > 0
    assert max(fused.values()) <= 1
    tied = fuse_rrf(semantic=[(5, 0.9), (4, 0.8)], keyword=[(4, 1.0), (5, 1.0)])  # a tie shares the rank
    assert tied[5] > tied[4]


def test_score_fusion_calibrates_each_side_onto_zero_one():
    fused = fuse_scores(cosines={1: 0.9, 2: 0.5, 3: 0.1}, floor=0.1, keyword={3: 1.0, 2: 0.5}, candidates=[1, 2, 3])
    assert fused == pytest.approx({1: 0.4 * 1.0, 2: 0.4 * 0.5 + 0.6 * 0.5, 3: 0.6 * 1.0})
    alone = fuse_scores(cosines={1: 0.9, 2: 0.5}, floor=0.5, keyword={}, candidates=[1, 2])
    assert alone == pytest.approx({1: 1.0, 2: 0.0})


@pytest.mark.parametrize(("depth", "k"), [(100, 99), (2, 3)])
def test_every_hit_whose_words_match_is_highlighted_however_deep_the_keyword_side_looks(corpus, monkeypatch, depth, k):
    # Given a hybrid query whose word is in a third of the titles, and a keyword side that looks `depth` deep
    # (at least as deep as the page: with depth 2 and 3 hits it lists 4 of the 7 that match, so it is not complete)
    from search.services import search_hybrid

    monkeypatch.setattr(search_hybrid, "FUSION_DEPTH", depth)
    hits = SemanticSearcher().search("Faro circle", k=k)
    # Then every hit titled with the word is marked, and no other is
    assert any("Faro" in hit.image.title for hit in hits)
    for hit in hits:
        fields = [m.field for m in hit.matches]
        assert fields == (["title"] if "Faro" in hit.image.title else []), (hit.image.title, fields)

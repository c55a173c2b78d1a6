"""search_run end to end over hand-made vectors: ranking, filters, cut-offs, collapsing, pagination, hydration."""

from __future__ import annotations

import numpy as np
import pytest

from core.metrics import SEARCH_STAGE_SECONDS, SEARCHES
from images.models import Image, ImageStatus
from search.models import SearchModel, SearchModelState
from search.query import QueryError, QueryTerm, SearchFilters, SearchQuery
from search.services import search_filters
from search.services import search_semantic as search_module
from search.services.search import search_run
from tests.search.test_search_fixtures import HAND_MODEL_KEY, days_ago, embedding_add, image_make, unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hand_model() -> None:
    """Searches use the hand-made vectors' key; the index reader starts fresh (exact over the Embedding table)."""
    from search.index import reader_reset
    from search.state import active_model_key_forget

    SearchModel.objects.create(
        model_key=HAND_MODEL_KEY, model_id="/nonexistent/hand-made-model", state=SearchModelState.ACTIVE
    )
    active_model_key_forget()
    reader_reset()
    yield
    active_model_key_forget()
    reader_reset()


def _like(image_id: int, **options) -> SearchQuery:
    return SearchQuery(terms=(QueryTerm(kind="image_id", image_id=image_id),), **options)


def _fan(n: int, **fields) -> list[Image]:
    """``n`` images whose vectors fan out from the x axis: image i has cosine decreasing with i to image 0."""
    images = []
    for i in range(n):
        angle = i * (np.pi / 2) / max(n, 2)
        image = image_make(title=f"fan {i}", **fields)
        embedding_add(image, unit([np.cos(angle), np.sin(angle), 0.01 * i]))
        images.append(image)
    return images


def test_image_id_query_ranks_by_cosine_with_scores_and_hydrated_rows() -> None:
    # given five images fanning out from the first
    images = _fan(5)
    # when searching like the first one
    page = search_run(query=_like(images[0].pk, limit=10))
    # then they come back in fan order with decreasing scores, the first scoring ~1, rows hydrated
    assert [hit.image.pk for hit in page.hits] == [image.pk for image in images]
    scores = [hit.score for hit in page.hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert page.hits[2].image.title == "fan 2"
    assert page.model_key == HAND_MODEL_KEY
    assert page.has_more is False


def test_negative_term_pushes_results_away() -> None:
    # given a and b in opposite corners, c between them nearer to a
    a, b, c = image_make(title="a"), image_make(title="b"), image_make(title="c")
    embedding_add(a, unit([1, 0, 0]))
    embedding_add(b, unit([0, 1, 0]))
    embedding_add(c, unit([0.8, 0.6, 0]))
    plain = search_run(query=_like(c.pk))
    pushed = search_run(
        query=SearchQuery(
            terms=(QueryTerm(kind="image_id", image_id=c.pk), QueryTerm(kind="image_id", image_id=b.pk, weight=-1))
        )
    )
    # then subtracting b moves the query off c towards a: a overtakes c, and b stays last
    assert [h.image.title for h in plain.hits] == ["c", "a", "b"]
    assert [h.image.title for h in pushed.hits] == ["a", "c", "b"]
    assert pushed.hits[-1].score < 0


def test_deleted_pending_and_excluded_images_never_show() -> None:
    images = _fan(5)
    Image.objects.filter(pk=images[1].pk).update(status=ImageStatus.PENDING)
    images[2].delete()
    page = search_run(query=_like(images[0].pk, exclude_ids=(images[0].pk,)))
    assert [hit.image.pk for hit in page.hits] == [images[3].pk, images[4].pk]


def test_a_page_loads_only_the_rows_it_needs_and_the_slack_only_when_some_are_gone(monkeypatch) -> None:
    # given ten fanned images, and a record of every batch of ids hydrated
    images = _fan(10)
    batches: list[list[int]] = []
    real = search_module._hydrate

    def spy(base, ids, rows, created):
        batches.append(list(ids))
        return real(base, ids, rows, created)

    monkeypatch.setattr(search_module, "_hydrate", spy)
    # when a page of 3 is asked: one batch, just the 3 + 1 (has_more) best ids
    page = search_run(query=_like(images[0].pk, limit=3))
    assert [h.image.pk for h in page.hits] == [i.pk for i in images[:3]]
    assert batches == [[i.pk for i in images[:4]]]
    # when one of those is no longer ready: the slack fetched with them fills the page
    batches.clear()
    Image.objects.filter(pk=images[1].pk).update(status=ImageStatus.PENDING)
    page = search_run(query=_like(images[0].pk, limit=3))
    assert [h.image.pk for h in page.hits] == [images[0].pk, images[2].pk, images[3].pk]
    assert page.has_more
    assert len(batches) == 2
    assert batches[0] == [i.pk for i in images[:4]]
    assert batches[1][0] == images[4].pk


def test_pages_are_stable_and_concatenate_to_the_full_ranking() -> None:
    images = _fan(23)
    full = [h.image.pk for h in search_run(query=_like(images[0].pk, limit=30)).hits]
    paged, offset = [], 0
    while True:
        page = search_run(query=_like(images[0].pk, limit=5, offset=offset))
        paged += [h.image.pk for h in page.hits]
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert paged == full
    assert len(full) == 23


def test_absolute_and_relative_cutoffs() -> None:
    images = _fan(10)
    everything = search_run(query=_like(images[0].pk)).hits
    floor = everything[4].score
    above = search_run(query=_like(images[0].pk, min_score=floor)).hits
    assert len(above) == 5
    assert all(hit.score >= floor for hit in above)
    margin = 1.0 - everything[2].score + 1e-6
    near_best = search_run(query=_like(images[0].pk, relative_margin=margin)).hits
    assert [h.image.pk for h in near_best] == [h.image.pk for h in everything[:3]]


def test_near_duplicates_collapse_with_a_count() -> None:
    # given three copies of one picture and two different ones
    base = unit([1, 0, 0, 0])
    copies = [image_make(title=f"copy {i}") for i in range(3)]
    for i, image in enumerate(copies):
        embedding_add(image, unit(base + 0.005 * i * unit([0, 0, 1, 0])))
    other = image_make(title="other")
    embedding_add(other, unit([0.7, 0.7, 0, 0]))
    page = search_run(query=_like(copies[0].pk, collapse=True))
    # then the copies show once, carrying the other two as duplicates
    assert [h.image.title for h in page.hits] == ["copy 0", "other"]
    assert page.hits[0].duplicates == 2
    assert sorted(page.hits[0].duplicate_ids) == sorted(c.pk for c in copies[1:])


@pytest.mark.parametrize("broad", [False, True])
def test_filters_keep_only_matching_images_selective_and_broad(broad: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # given 40 images, every fourth tagged "sea"
    images = [image for image in _fan(40)]
    for i, image in enumerate(images):
        if i % 4 == 3:
            Image.objects.filter(pk=image.pk).update(tags=["sea"])
    if broad:  # force the over-fetch path, starting small so it must grow
        monkeypatch.setattr(search_filters, "SELECTIVE_MAX_IDS", 0)
        monkeypatch.setattr(search_module, "FIRST_FETCH_MIN", 4)
    page = search_run(query=_like(images[0].pk, filters=SearchFilters(tags=("sea",)), limit=8))
    # then all eight "sea" images come back, in rank order
    assert [h.image.pk for h in page.hits] == [images[i].pk for i in range(3, 40, 4)][:8]
    assert page.has_more is True


def test_sort_by_date_orders_kept_hits_newest_first() -> None:
    images = _fan(4)
    for age, image in zip([3, 1, 4, 2], images, strict=True):
        Image.objects.filter(pk=image.pk).update(created_at=days_ago(age))
    page = search_run(query=_like(images[0].pk, sort="date"))
    assert [h.image.pk for h in page.hits] == [images[1].pk, images[3].pk, images[0].pk, images[2].pk]


def test_unknown_and_unindexed_image_ids_get_clear_messages() -> None:
    pending = image_make(status=ImageStatus.PENDING)
    with pytest.raises(QueryError, match=r"image:987654 does not exist"):
        search_run(query=_like(987654))
    with pytest.raises(QueryError, match=rf"image:{pending.pk} is not indexed yet"):
        search_run(query=_like(pending.pk))


def test_terms_that_cancel_out_are_refused() -> None:
    (image,) = _fan(1)
    terms = (QueryTerm(kind="image_id", image_id=image.pk), QueryTerm(kind="image_id", image_id=image.pk, weight=-1))
    with pytest.raises(QueryError, match="cancel each other out"):
        search_run(query=SearchQuery(terms=terms))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 100"),
        ({"limit": 101}, "limit"),
        ({"offset": 990, "limit": 20}, "up to the 1000th"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    (image,) = _fan(1)
    with pytest.raises(QueryError, match=message):
        search_run(query=_like(image.pk, **options))


def test_stages_and_interface_are_recorded_in_metrics() -> None:
    (image,) = _fan(1)
    before = SEARCHES.labels(interface="test")._value.get()
    index_before = SEARCH_STAGE_SECONDS.labels(stage="index")._sum.get()
    page = search_run(query=_like(image.pk, interface="test"))
    assert SEARCHES.labels(interface="test")._value.get() == before + 1
    assert SEARCH_STAGE_SECONDS.labels(stage="index")._sum.get() > index_before
    assert set(page.timings_ms) == {"encode", "index", "hydrate"}


def test_unready_hits_ranked_first_do_not_starve_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the five best-ranked indexed images are no longer ready, and no slack in the first fetch
    images = _fan(12)
    Image.objects.filter(pk__in=[image.pk for image in images[:5]]).update(status=ImageStatus.FAILED)
    monkeypatch.setattr(search_module, "UNFILTERED_SLACK", 0)
    # when asking for a page of four / then the search digs deeper and fills it with ready images
    page = search_run(query=_like(images[0].pk, limit=4))
    assert [hit.image.pk for hit in page.hits] == [image.pk for image in images[5:9]]
    assert page.has_more is True

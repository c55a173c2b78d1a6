"""Every documented parameter works the same way everywhere: `format` is a filter (not DRF's renderer switch),
the catalogue filters have one definition (image list, search, similar, web UI, SemanticSearcher), an unknown
parameter is a 400 naming it, and errors have one shape."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from images.filters import FilterError, catalogue_filters
from images.models import Image
from search.index import reader_reset
from search.models import SearchModel, SearchModelState
from search.python_api import SemanticSearcher
from search.state import active_model_key_forget
from tests.search.test_search_fixtures import HAND_MODEL_KEY, embedding_add, image_make, unit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hand_model(monkeypatch: pytest.MonkeyPatch) -> None:
    SearchModel.objects.create(
        model_key=HAND_MODEL_KEY, model_id="/nonexistent/hand-made-model", state=SearchModelState.ACTIVE
    )
    active_model_key_forget()
    reader_reset()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "100000/min", "read": "100000/min"})
    cache.clear()
    yield
    active_model_key_forget()
    reader_reset()


@pytest.fixture
def catalogue() -> dict[str, Image]:
    alice = get_user_model().objects.create_user("alice")
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = {
        "png": image_make(title="png", format="PNG", tags=["demo", "red"], created_at=midnight - timedelta(days=2)),
        "jpeg": image_make(title="jpeg", format="JPEG", tags=["demo"], uploader=alice,
                           created_at=midnight - timedelta(days=1, hours=-23)),  # late on the day before
        "webp": image_make(title="webp", format="WebP", tags=["other"], created_at=midnight + timedelta(hours=1)),
    }  # fmt: skip
    for n, image in enumerate(rows.values()):
        embedding_add(image, unit([1, 0.1 * n, 0]))
    return rows


def _search_ids(path: str, **params) -> set[int]:
    response = APIClient().get(path, params)
    assert response.status_code == 200, response.content
    return {hit["image"]["id"] for hit in response.json()["results"]}


def _list_ids(**params) -> set[int]:
    response = APIClient().get("/api/v1/images/", params)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_format_is_a_filter_on_search_similar_and_the_image_list(catalogue: dict[str, Image]) -> None:
    png, jpeg, webp = catalogue["png"], catalogue["jpeg"], catalogue["webp"]
    # When filtering by format=PNG (DRF used to read `format` as its renderer switch and answer 404)
    assert _search_ids("/api/v1/search", q=f"image:{webp.pk}", format="PNG") == {png.pk}
    assert _search_ids(f"/api/v1/images/{webp.pk}/similar", format="png,jpeg") == {png.pk, jpeg.pk}
    assert _list_ids(format="PNG") == {png.pk}
    # And the former name on the image list still works
    assert _list_ids(image_format="jpeg") == {jpeg.pk}


def test_tags_uploader_and_dates_mean_the_same_in_search_and_list(catalogue: dict[str, Image]) -> None:
    png, jpeg, webp = catalogue["png"], catalogue["jpeg"], catalogue["webp"]
    q = {"q": f"image:{png.pk}"}
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    cases = [
        ({"tags": "Demo"}, {png.pk, jpeg.pk}),  # stored tags are lower case; filters are normalised the same way
        ({"tags": "  DEMO ,red"}, {png.pk}),
        ({"uploader": "alice"}, {jpeg.pk}),
        ({"uploader": str(jpeg.uploader_id)}, {jpeg.pk}),  # a user id works as well as the username
        ({"created_before": yesterday}, {png.pk, jpeg.pk}),  # a date includes its whole day
        ({"created_after": yesterday}, {jpeg.pk, webp.pk}),
        ({"created_after": yesterday, "created_before": yesterday}, {jpeg.pk}),
    ]
    for params, expected in cases:
        # Then the search API, the image list and the Python API agree
        assert _search_ids("/api/v1/search", **q, **params) == expected, params
        assert _list_ids(**params) == expected, params
        hits = SemanticSearcher().search(png.pk, k=10, **params)
        assert {hit.image.pk for hit in hits} == expected, params


def test_an_unknown_parameter_is_a_400_naming_it_and_the_accepted_ones(catalogue: dict[str, Image]) -> None:
    png = catalogue["png"]
    for path, params in [
        ("/api/v1/search", {"q": "image:1", "image_fromat": "PNG"}),
        (f"/api/v1/images/{png.pk}/similar", {"colour": "red"}),
        ("/api/v1/images/", {"tag": "demo"}),
    ]:
        # When a parameter is misspelt
        response = APIClient().get(path, params)
        # Then the request is refused, naming the parameter and listing the accepted ones
        body = response.json()
        assert response.status_code == 400, (path, body)
        assert body["code"] == "unknown_parameter"
        unknown = next(iter(set(params) - {"q"}))
        assert unknown in body["detail"]
        assert "tags" in body["detail"]
        assert "format" in body["detail"]
        assert list(body["fields"]) == [unknown]
    # And a JSON search body with a misspelt key is refused the same way
    response = APIClient().post("/api/v1/search", {"q": "image:1", "limt": 3}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_parameter"


def test_validation_errors_have_the_one_error_shape(catalogue: dict[str, Image]) -> None:
    # When a value is invalid
    response = APIClient().get("/api/v1/search", {"q": "red", "limit": "many", "format": "PDF"})
    # Then the answer is detail + code + fields, with every problem listed per field
    body = response.json()
    assert response.status_code == 400
    assert set(body) == {"detail", "code", "fields"}
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"limit", "format"}
    assert "JPEG" in " ".join(body["fields"]["format"])  # the accepted formats are named
    # And a nested JSON error has a dotted path
    response = APIClient().post("/api/v1/search", {"terms": [{"weight": 1}]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["terms.0.non_field_errors"]


def test_python_filters_refuse_an_unknown_format() -> None:
    with pytest.raises(FilterError, match="accepted: JPEG, PNG"):
        catalogue_filters(formats="PDF")
    assert catalogue_filters(formats="jpg,Png", tags=[" Sea  Side "]).formats == ("JPEG", "PNG")
    assert catalogue_filters(tags="Sea  Side,sea side").tags == ("sea side",)

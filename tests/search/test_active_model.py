"""One answer to "which model do searches use", shared by search, status and readiness."""

from __future__ import annotations

import pytest

from search.models import SearchModel, SearchModelState
from search.state import ActiveModel, active_model, active_model_key, active_model_key_forget

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget() -> None:
    active_model_key_forget()
    yield
    active_model_key_forget()


def test_without_an_active_row_it_is_the_configured_model(settings) -> None:
    settings.SEMSEARCH_MODEL_ID, settings.SEMSEARCH_MODEL_REVISION = "toy", ""
    model = active_model()
    assert (model.model_id, model.revision) == ("toy", "")
    assert model.model_key == active_model_key()


def test_the_active_row_gives_key_id_and_revision_and_status_asks_for_that_revision(monkeypatch) -> None:
    # given an active model pinned to a revision
    SearchModel.objects.create(model_key="org/clip@abc123", model_id="org/clip", revision="abc123",
                               state=SearchModelState.ACTIVE)  # fmt: skip
    asked = []
    import search.selectors
    from search.selectors import system_status

    def status_spy(model_id=None, revision=None) -> dict:
        asked.append((model_id, revision))
        return {"model_key": None}

    monkeypatch.setattr(search.selectors, "encoder_status", status_spy)
    # then searches, status and readiness all mean that revision
    assert active_model() == ActiveModel("org/clip@abc123", "org/clip", "abc123")
    system_status()
    assert asked == [("org/clip", "abc123")]


def test_a_switch_is_seen_once_the_cache_is_forgotten() -> None:
    first = SearchModel.objects.create(model_key="a@1", model_id="a", revision="1", state=SearchModelState.ACTIVE)
    assert active_model_key() == "a@1"
    first.state = SearchModelState.RETIRED
    first.save()
    SearchModel.objects.create(model_key="b@2", model_id="b", revision="2", state=SearchModelState.ACTIVE)
    assert active_model_key() == "a@1"  # cached for a second in this process
    active_model_key_forget()
    assert active_model_key() == "b@2"

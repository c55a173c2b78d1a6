"""The index management commands: index_build, index_status, embed_pending, model_switch."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from core.queues import queue_depths
from images.models import Image, ImageStatus
from search.index import reader_reset
from search.models import Embedding, IndexSnapshot, SearchModel, SearchModelState
from search.state import active_model_key_forget
from tests.search.test_index import KEY, clustered, images_with_vectors


@pytest.fixture(autouse=True)
def _active_synthetic(settings, tmp_path, db):
    settings.INDEX_ROOT = tmp_path / "index"
    reader_reset()
    active_model_key_forget()
    SearchModel.objects.create(model_key=KEY, model_id="synthetic", state=SearchModelState.ACTIVE)
    yield
    reader_reset()
    active_model_key_forget()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_index_build_then_index_status_show_the_snapshot():
    # Given 60 embeddings of the active model
    images_with_vectors(clustered(60))
    # When index_build runs, then again
    built = json.loads(run("index_build"))
    again = json.loads(run("index_build"))
    # Then the first builds v1 and the second finds it current
    assert (built["status"], built["version"], built["factory"], built["count"]) == ("built", 1, "Flat", 60)
    assert again["status"] == "current"
    # And index_status reports model, version, type, counts and recall
    text = run("index_status")
    for expected in (KEY, "snapshot version                 1", "Flat", "recall@10                        1.000",
                     "60 / 0 / 0"):  # fmt: skip
        assert expected in text
    status = json.loads(run("index_status", "--json"))
    assert (status["version"], status["count"], status["delta"]) == (1, 60, 0)


def test_embed_pending_enqueues_pending_and_unfindable_images():
    # Given two pending images and one ready image without an embedding for the active model
    ids = images_with_vectors(clustered(3), key="other-model")
    Image.objects.filter(id__in=ids[:2]).update(status=ImageStatus.PENDING)
    before = queue_depths().get("embed", 0)
    # When embed_pending runs with one image per task
    text = run("embed_pending", "--chunk", "1")
    # Then three tasks wait in the embed queue
    assert "enqueued 3 image(s)" in text
    assert queue_depths().get("embed", 0) == before + 3


def test_model_switch_status_and_removal_of_a_retired_model():
    # Given a retired model with embeddings and a snapshot
    SearchModel.objects.create(model_key="old-model", model_id="old", state=SearchModelState.RETIRED)
    images_with_vectors(clustered(10), key="old-model")
    call_command("index_build", "--model-key", "old-model", stdout=io.StringIO())
    # Then --status lists both models
    listed = {row["model_key"]: row["state"] for row in json.loads(run("model_switch", "--status"))}
    assert listed == {KEY: "active", "old-model": "retired"}
    # And the active model cannot be removed, the retired one can (embeddings, snapshots and files)
    with pytest.raises(CommandError, match="only a retired model"):
        run("model_switch", "--remove", KEY)
    removed = json.loads(run("model_switch", "--remove", "old-model"))
    assert removed == {"embeddings": 10, "snapshots": 1, "files": 1}
    assert not Embedding.objects.filter(model_key="old-model").exists()
    assert not IndexSnapshot.objects.filter(model_key="old-model").exists()

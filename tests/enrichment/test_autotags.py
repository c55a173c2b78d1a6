"""Automatic tags from the search model: proposed as images are embedded, reviewed by people, filterable, and
recomputed after a model switch."""

from __future__ import annotations

import shutil

import pytest
from django.conf import settings as live_settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from core.dispatch import ENRICH_OCR, task_send
from images.models import AutoTag, AutoTagState, Image
from images.services.enrichment import autotag_review
from search.enrichment import autotags_compute
from search.enrichment.toy_labels import toy_tags_true
from search.query import SearchFilters
from search.services.embedding import embedding_compute
from search.services.search_filters import filters_queryset
from search.state import active_model_key
from tests.enrichment.conftest import toy_pictures_store

pytestmark = pytest.mark.django_db


def _ocr_sends(callbacks) -> list[list[int]]:
    return [cb.keywords["image_ids"] for cb in callbacks
            if getattr(cb, "func", None) is task_send and cb.args[0] == ENRICH_OCR]  # fmt: skip


def _tagged(tag: str) -> set[int]:
    return set(filters_queryset(filters=SearchFilters(tags=(tag,))).values_list("id", flat=True))


def test_embedding_toy_pictures_proposes_mostly_true_tags_and_queues_ocr(django_capture_on_commit_callbacks) -> None:
    # Given 40 pending toy pictures
    stored = toy_pictures_store(40, seed=5)
    ids = [image.pk for image, _ in stored]
    # When they are embedded with the active (toy) model
    with django_capture_on_commit_callbacks() as callbacks:
        embedding_compute(image_ids=ids)
    # Then automatic tags were proposed inline, from this model, and most of them are true
    rows = list(AutoTag.objects.all())
    truth = {image.pk: toy_tags_true(attributes) for image, attributes in stored}
    correct = sum(row.tag in truth[row.image_id] for row in rows)
    assert len(rows) >= 40, "the toy model tags at least one attribute per picture on average"
    assert correct / len(rows) >= 0.85
    assert {row.model_key for row in rows} == {active_model_key()}
    assert {row.state for row in rows} == {AutoTagState.PROPOSED}
    # And OCR of exactly these images was queued (on commit, on its own queue), never holding them up
    assert sorted(i for batch in _ocr_sends(callbacks) for i in batch) == sorted(ids)
    assert set(Image.objects.values_list("status", flat=True)) == {"ready"}


def test_reviewed_tags_count_in_filters_and_survive_recomputation() -> None:
    # Given embedded toy pictures with proposed tags
    stored = toy_pictures_store(30, seed=6)
    embedding_compute(image_ids=[image.pk for image, _ in stored])
    first, second = AutoTag.objects.order_by("id")[:2]
    reviewer = get_user_model().objects.create_user("reviewer")
    # When a person rejects one tag and accepts another
    autotag_review(autotag_ids=[first.pk], accept=False, user=reviewer)
    autotag_review(autotag_ids=[second.pk], accept=True, user=reviewer)
    # Then the rejected one no longer makes its image match that tag, the accepted and proposed ones do
    assert first.image_id not in _tagged(first.tag)
    assert second.image_id in _tagged(second.tag)
    proposed = AutoTag.objects.filter(state=AutoTagState.PROPOSED).first()
    assert proposed is not None
    assert proposed.image_id in _tagged(proposed.tag)
    # And the image list's tags= filter agrees
    listed = {row["id"] for row in APIClient().get("/api/v1/images/", {"tags": first.tag}).json()["results"]}
    assert first.image_id not in listed
    # And recomputing every tag keeps both decisions (the rejected tag is not proposed again)
    autotags_compute(image_ids=[first.image_id, second.image_id])
    assert AutoTag.objects.get(image_id=first.image_id, tag=first.tag).state == AutoTagState.REJECTED
    accepted = AutoTag.objects.get(image_id=second.image_id, tag=second.tag)
    assert (accepted.state, accepted.reviewed_by) == (AutoTagState.ACCEPTED, reviewer)


def test_people_tags_and_automatic_tags_match_the_same_filter() -> None:
    # Given a toy picture a person tagged by hand, and one only the model tagged
    stored = toy_pictures_store(12, seed=8)
    embedding_compute(image_ids=[image.pk for image, _ in stored])
    auto = AutoTag.objects.first()
    assert auto is not None
    hand = Image.objects.exclude(pk=auto.image_id).exclude(auto_tags__tag=auto.tag).first()
    assert hand is not None
    Image.objects.filter(pk=hand.pk).update(tags=[auto.tag])
    # When filtering by that tag
    # Then both match
    assert {auto.image_id, hand.pk} <= _tagged(auto.tag)


def test_staff_accept_and_reject_from_the_image_page() -> None:
    # Given an embedded toy picture with proposed tags and a staff member signed in
    stored = toy_pictures_store(6, seed=9)
    embedding_compute(image_ids=[image.pk for image, _ in stored])
    tag = AutoTag.objects.first()
    assert tag is not None
    staff = get_user_model().objects.create_user("editor", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    page = client.get(f"/images/{tag.image_id}/").content.decode()
    assert tag.tag in page
    assert "reject" in page
    # When they reject it
    response = client.post(f"/images/{tag.image_id}/autotags/{tag.pk}/review", {"decision": "reject"})
    # Then it is rejected by them, and back on the page it is struck out
    assert response.status_code == 303
    tag.refresh_from_db()
    assert (tag.state, tag.reviewed_by) == (AutoTagState.REJECTED, staff)
    assert 'class="tag auto rejected"' in client.get(f"/images/{tag.image_id}/").content.decode()
    # And anyone else may not review, nor sees the rejected tag
    anonymous = Client()
    assert anonymous.post(f"/images/{tag.image_id}/autotags/{tag.pk}/review", {"decision": "accept"}).status_code == 302
    tag.refresh_from_db()
    assert tag.state == AutoTagState.REJECTED
    assert 'class="tag auto rejected"' not in anonymous.get(f"/images/{tag.image_id}/").content.decode()


def test_a_model_switch_recomputes_automatic_tags_with_the_new_model(settings, tmp_path) -> None:
    from search.embeddings.loading import resolve_source
    from search.index import index_build
    from search.services.models import model_switch_start, model_switch_step

    # Given tagged toy pictures, one tag rejected, and a second model (the toy weights in another folder)
    settings.SEMSEARCH_AUTOTAG_VOCABULARY = "toy"
    settings.SEMSEARCH_PENDING_REQUEUE_MINUTES = 0
    stored = toy_pictures_store(10, seed=10)
    embedding_compute(image_ids=[image.pk for image, _ in stored])
    old_key = active_model_key()
    index_build(model_key=old_key)
    rejected = AutoTag.objects.first()
    assert rejected is not None
    autotag_review(autotag_ids=[rejected.pk], accept=False, user=None)
    copy = tmp_path / "second-model"
    shutil.copytree(resolve_source(live_settings.SEMSEARCH_MODEL_ID).location, copy)
    # When the switch runs to completion (tasks run inline)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from celery import current_app

    current_app.conf.task_always_eager = True
    try:
        new_key = model_switch_start(model_id=str(copy)).model_key
        for _ in range(5):
            if model_switch_step()["status"] in ("activated", "idle"):
                break
    finally:
        current_app.conf.task_always_eager = False
    # Then the new model is active and every proposed tag now comes from it
    assert active_model_key() == new_key != old_key
    assert set(AutoTag.objects.filter(state=AutoTagState.PROPOSED).values_list("model_key", flat=True)) == {new_key}
    # And the person's rejection still stands
    assert AutoTag.objects.get(pk=rejected.pk).state == AutoTagState.REJECTED


def test_tagging_switched_off_proposes_nothing(settings) -> None:
    settings.SEMSEARCH_AUTOTAGS = False
    stored = toy_pictures_store(5, seed=12)
    embedding_compute(image_ids=[image.pk for image, _ in stored])
    assert not AutoTag.objects.exists()
    assert set(Image.objects.values_list("status", flat=True)) == {"ready"}


def test_tag_text_vectors_are_the_normalised_mean_of_each_tags_prompts_from_one_encoder_call() -> None:
    # Given the toy vocabulary and the toy encoder, counting its calls
    import numpy as np

    from search.embeddings import get_encoder
    from search.enrichment.tagging import text_vectors_compute
    from search.enrichment.vocabulary import vocabulary_load, vocabulary_path

    vocabulary = vocabulary_load(path=vocabulary_path(model_id="toy"))
    encoder = get_encoder("toy")
    calls = []

    class Counting:
        def encode_texts(self, texts):
            calls.append(len(texts))
            return encoder.encode_texts(texts)

    # When the tag vectors are computed
    matrix = text_vectors_compute(vocabulary=vocabulary, encoder=Counting())

    # Then all prompts went in one call, and each row is its tag's prompts' normalised mean (cosine, since
    # dynamic int8 quantises each batch's activations together)
    assert calls == [sum(len(group.templates) * len(group.tags) for group in vocabulary.groups)]
    assert matrix.shape == (len(vocabulary.tags), encoder.dimension)
    row = 0
    for group in vocabulary.groups:
        for _, phrase in group.tags:
            mean = encoder.encode_texts(vocabulary.prompts(group, phrase)).mean(axis=0)
            assert float(matrix[row] @ (mean / np.linalg.norm(mean))) >= 0.999
            assert abs(float(np.linalg.norm(matrix[row])) - 1.0) < 1e-5
            row += 1

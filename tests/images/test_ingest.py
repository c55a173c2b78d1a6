"""The one ingestion service: rows, files, provenance merging, duplicates (also concurrent) and on-commit enqueue."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from PIL import Image as PILImage

from images.models import Image, ImageStatus
from images.services import image_delete, image_ingest, images_reembed
from images.services import ingest as ingest_module
from tests.dispatched import embed_requests

from .pictures import picture_bytes, stored_files


def enqueued_ids(callbacks) -> list[list[int]]:
    """The image ids of the embed requests registered on commit (the callbacks are not executed)."""
    return [ids for ids, _ in embed_requests(callbacks)]


@pytest.mark.django_db
def test_ingest_stores_original_thumbnail_and_a_pending_row(django_capture_on_commit_callbacks, media_root):
    data = picture_bytes("JPEG", size=(640, 480))
    # When a new picture is ingested
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = image_ingest(data=data, filename="beach.jpg", title="A beach", tags=["Sea", " sand ", "sea"])
    image = result.image
    # Then a pending row with the decoded facts exists, files are content-addressed, and embedding waits for commit
    assert result.created is True
    assert (image.status, image.format, image.width, image.height) == (ImageStatus.PENDING, "JPEG", 640, 480)
    assert image.tags == ["sea", "sand"]
    assert image.file_size == len(data)
    h = image.content_hash
    assert image.original.name == f"originals/{h[:2]}/{h[2:4]}/{h}.jpg"
    assert image.thumbnail.name == f"thumbnails/{h[:2]}/{h[2:4]}/{h}.jpg"
    assert (media_root / image.original.name).read_bytes() == data
    with PILImage.open(media_root / image.thumbnail.name) as thumb:
        assert thumb.size == (384, 288)
    assert enqueued_ids(callbacks) == [[image.pk]]


@pytest.mark.django_db
def test_same_bytes_twice_give_the_existing_image_with_provenance_merged(django_capture_on_commit_callbacks):
    data = picture_bytes("PNG")
    user = get_user_model().objects.create_user("ann")
    first = image_ingest(data=data, filename="one.png", tags=["a"])
    # When the same bytes arrive again with more provenance
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        second = image_ingest(data=data, filename="two.png", title="Title", attribution="Ann", tags=["b", "a"],
                              source_link="https://example.org/p", uploader=user)  # fmt: skip
    # Then the same row comes back, blanks filled, tags merged, the first name kept, and nothing re-enqueued
    assert second.created is False
    assert second.image.pk == first.image.pk
    assert Image.objects.count() == 1
    image = Image.objects.get()
    assert (image.original_filename, image.title, image.attribution) == ("one.png", "Title", "Ann")
    assert image.tags == ["a", "b"]
    assert image.uploader == user
    assert image.source_link == "https://example.org/p"
    assert enqueued_ids(callbacks) == []


@pytest.mark.django_db
def test_reuploading_a_failed_image_retries_it(django_capture_on_commit_callbacks):
    data = picture_bytes("PNG")
    image = image_ingest(data=data).image
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.FAILED, failure_reason="model crashed")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = image_ingest(data=data)
    assert again.image.status == ImageStatus.PENDING
    assert again.image.failure_reason == ""
    assert enqueued_ids(callbacks) == [[image.pk]]


@pytest.mark.django_db
def test_a_rolled_back_ingest_leaves_no_row_and_reingesting_reuses_the_files(media_root):
    data = picture_bytes("PNG", color=(9, 9, 9))

    # Given an ingest inside a transaction that rolls back
    def failing_request() -> None:
        with transaction.atomic():
            image_ingest(data=data)
            raise RuntimeError("request failed after the upload")

    with pytest.raises(RuntimeError):
        failing_request()
    assert Image.objects.count() == 0
    left = stored_files(media_root)
    # When the same bytes are ingested again, then one row points at the very same files
    result = image_ingest(data=data)
    assert result.created is True
    assert stored_files(media_root) == left
    assert (media_root / result.image.original.name).read_bytes() == data


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_the_same_bytes_give_one_image(monkeypatch):
    data = picture_bytes("PNG", color=(1, 2, 3))
    # Given two uploads that both pass the "already stored?" check before either inserts its row
    barrier = threading.Barrier(2, timeout=20)
    real_decode = ingest_module.decode_image

    def decode_after_both_checked(*args, **kwargs):
        barrier.wait()
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "decode_image", decode_after_both_checked)
    monkeypatch.setattr(ingest_module, "task_send_on_commit", lambda *args, **kwargs: None)
    results, errors = [], []

    def upload(name: str) -> None:
        try:
            results.append(image_ingest(data=data, filename=name, tags=[name]))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(f"t{i}.png",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then both succeed, exactly one created the row, and both point at it
    assert errors == []
    assert sorted(result.created for result in results) == [False, True]
    assert Image.objects.count() == 1
    assert {result.image.pk for result in results} == {Image.objects.get().pk}
    assert sorted(Image.objects.get().tags) == ["t0.png", "t1.png"]


@pytest.mark.django_db
def test_reembed_resets_to_pending_and_enqueues_on_commit(django_capture_on_commit_callbacks):
    image = image_ingest(data=picture_bytes("PNG")).image
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.READY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        count = images_reembed(image_ids=[image.pk, 999_999], model_key="toy-clip@abc")
    assert count == 1
    assert Image.objects.get().status == ImageStatus.PENDING
    assert embed_requests(callbacks) == [([image.pk], "toy-clip@abc")]


@pytest.mark.django_db
def test_delete_removes_the_row_and_its_files_on_commit(django_capture_on_commit_callbacks, media_root):
    image = image_ingest(data=picture_bytes("PNG")).image
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=image)
    assert Image.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db
def test_on_commit_sends_embed_images_with_the_new_id(django_capture_on_commit_callbacks, monkeypatch):
    # (the broker is replaced at its last step: what reaches Celery is the task's registered name and kwargs)
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, kwargs, countdown=None: sent.append((name, kwargs)))
    with django_capture_on_commit_callbacks(execute=True):
        image = image_ingest(data=picture_bytes("PNG", color=(40, 41, 42))).image
    with django_capture_on_commit_callbacks(execute=True):
        images_reembed(image_ids=[image.pk], model_key="some-model")
    assert sent == [
        ("workers.tasks.embed_images", {"image_ids": [image.pk]}),
        ("workers.tasks.embed_images", {"image_ids": [image.pk], "model_key": "some-model"}),
    ]
    from workers.tasks import embed_images

    assert sent[0][0] == embed_images.name  # the name the worker registered the task under

"""Recording prepared images in groups (``images_record``): one lookup and one insert for a group, duplicates merged
as one at a time would, a concurrent insert of the same bytes resolved; uploads keep one outcome per file in order."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from images.models import Image, ImageStatus
from images.services import image_ingest, image_prepare, image_record, images_record
from images.services import ingest as ingest_module
from images.services.uploads import uploads_ingest

from .pictures import picture_bytes

pytestmark = pytest.mark.django_db


def prepared(count: int, offset: int = 0) -> list:
    return [image_prepare(data=picture_bytes("PNG", color=(offset + i, 9, 9))) for i in range(count)]


def inserts(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "images_image"')]


def test_a_group_of_new_images_is_one_lookup_and_one_insert():
    group = prepared(20)
    with CaptureQueriesContext(connection) as queries:
        results = images_record(prepared=[(item, f"{i}.png") for i, item in enumerate(group)], title="Trip",
                                tags=["Sea"])  # fmt: skip
    # Then every image is a new pending row, in the order given, with the shared and its own provenance
    assert [r.created for r in results] == [True] * 20
    assert [r.image.content_hash for r in results] == [item.content_hash for item in group]
    stored = Image.objects.get(pk=results[7].image.pk)
    assert (stored.original_filename, stored.title, stored.tags, stored.status) == ("7.png", "Trip", ["sea"],
                                                                                    ImageStatus.PENDING)  # fmt: skip
    assert len(inserts(queries.captured_queries)) == 1
    assert len(queries.captured_queries) <= 5  # lookup, savepoint/transaction, insert


def test_known_bytes_and_repeats_in_a_group_are_merged_not_duplicated():
    old = image_ingest(data=picture_bytes("PNG", color=(200, 9, 9)), filename="old.png").image
    Image.objects.filter(pk=old.pk).update(status=ImageStatus.FAILED, failure_reason="model crashed")
    fresh = prepared(2)
    again = image_prepare(data=picture_bytes("PNG", color=(200, 9, 9)))
    group = [(fresh[0], "a.png"), (again, "old-again.png"), (fresh[1], "b.png"), (fresh[0], "a-copy.png")]
    results = images_record(prepared=group, attribution="Ann")
    # Then the stored image comes back (retried: a failed one is pending again), the repeat is the first copy
    assert [r.created for r in results] == [True, False, True, False]
    assert results[1].image.pk == old.pk
    assert results[3].image.pk == results[0].image.pk
    old.refresh_from_db()
    assert (old.status, old.attribution, old.original_filename) == (ImageStatus.PENDING, "Ann", "old.png")
    assert Image.objects.count() == 3


def test_an_image_inserted_by_another_process_meanwhile_is_resolved_one_by_one(monkeypatch):
    group = prepared(3)
    real_clean = ingest_module.filename_clean
    raced: list = []

    def a_competitor_inserts_meanwhile(name):  # called after the lookup, while the new rows are built
        if not raced:  # another upload stores the second picture (and commits) before this call's insert
            raced.append(None)  # marked first: image_record cleans its own file name through this too
            raced[0] = image_record(prepared=group[1], filename="competitor.png", enqueue=False)
        return real_clean(name)

    monkeypatch.setattr(ingest_module, "filename_clean", a_competitor_inserts_meanwhile)
    results = images_record(prepared=[(item, f"{i}.png") for i, item in enumerate(group)])
    # Then the group's insert rolled back and each image was recorded on its own: no error, no duplicate
    assert [r.created for r in results] == [True, False, True]
    assert results[1].image.pk == raced[0].image.pk
    assert Image.objects.get(pk=results[1].image.pk).original_filename == "competitor.png"
    assert Image.objects.count() == 3


def test_an_upload_keeps_one_outcome_per_file_in_order_across_groups(settings):
    settings.SEMSEARCH_EMBED_BATCH_SIZE = 4
    known = image_ingest(data=picture_bytes("PNG", color=(99, 1, 1))).image
    files = [(f"{i}.png", picture_bytes("PNG", color=(i, 1, 1))) for i in range(9)]
    files.insert(2, ("empty.jpg", b""))
    files.insert(5, ("known.png", picture_bytes("PNG", color=(99, 1, 1))))
    files.insert(7, ("too-big.png", "The file is over the limit."))
    files.append(("again.png", picture_bytes("PNG", color=(3, 1, 1))))
    outcomes = uploads_ingest(files=files, title="Batch")
    # Then each file has its outcome where it was sent, whichever group it fell in
    assert [o.filename for o in outcomes] == [name for name, _ in files]
    statuses = {o.filename: o.status for o in outcomes}
    assert statuses == {**{f"{i}.png": "created" for i in range(9)}, "empty.jpg": "rejected", "known.png": "existing",
                        "too-big.png": "rejected", "again.png": "existing"}  # fmt: skip
    by_name = {o.filename: o for o in outcomes}
    assert by_name["empty.jpg"].reason == "The file is empty."
    assert by_name["too-big.png"].reason == "The file is over the limit."
    assert by_name["known.png"].image.pk == known.pk
    assert by_name["again.png"].image.pk == by_name["3.png"].image.pk
    assert Image.objects.count() == 10
    assert Image.objects.filter(title="Batch").count() == 10  # the known one's blank title filled in too


def test_a_media_folder_removed_behind_the_process_s_back_is_made_again(media_root):
    import shutil

    from images.services.storage import media_file_write, media_name

    name = media_name(kind="originals", content_hash="ab" * 32, ext="png")
    media_file_write(name=name, data=b"first")
    # When the folder it made is removed by someone else, then the next write into it makes it again
    shutil.rmtree(media_root / "originals")
    other = media_name(kind="originals", content_hash="abab" + "cd" * 30, ext="png")  # the same folder
    media_file_write(name=other, data=b"second")
    assert (media_root / other).read_bytes() == b"second"

"""The folder importer: recursive, incremental (unchanged files skipped, renames recognised by hash), optional
deletion of images whose files are gone, and a resumable run."""

from __future__ import annotations

import os
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from images.models import Image, ImportedFile
from images.services import folder_import as folder_import_module
from images.services.folder_import import folder_import_run
from tests.dispatched import embed_requests

from .pictures import picture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "trip" / "day1").mkdir(parents=True)
    (root / ".cache").mkdir()
    (root / "a.png").write_bytes(picture_bytes("PNG", color=(10, 0, 0)))
    (root / "trip" / "b.jpg").write_bytes(picture_bytes("JPEG", color=(0, 200, 0)))
    (root / "trip" / "day1" / "c.webp").write_bytes(picture_bytes("WEBP", color=(0, 0, 200)))
    (root / "trip" / "notes.txt").write_text("not an image, ignored")
    (root / "trip" / "broken.jpg").write_text("a text file named .jpg")
    (root / ".cache" / "hidden.png").write_bytes(picture_bytes("PNG", color=(1, 1, 1)))
    return root


def run(root: Path, **options) -> str:
    out = StringIO()
    call_command("import_images", dir=str(root), no_progress=True, stdout=out, **options)
    return out.getvalue()


def test_first_import_stores_every_image_and_reports_failures(tree, tmp_path, django_capture_on_commit_callbacks):
    report = tmp_path / "failed.csv"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        output = run(tree, report=str(report), batch_size=2)
    assert "4 seen, 3 created, 0 already stored, 0 skipped (imported before), 1 failed" in output
    assert sorted(Image.objects.values_list("original_filename", flat=True)) == ["a.png", "b.jpg", "c.webp"]
    assert ImportedFile.objects.count() == 3
    assert f"{tree / 'trip' / 'broken.jpg'}" in report.read_text()
    assert "not a readable image" in report.read_text()
    sent = [ids for ids, _ in embed_requests(callbacks)]
    assert [len(ids) for ids in sent] == [2, 1]


def test_rerun_skips_unchanged_files_and_recognises_renames(tree):
    run(tree)
    ids_before = set(Image.objects.values_list("pk", flat=True))
    assert "3 skipped (imported before)" in run(tree)
    # When a file is renamed into another folder
    (tree / "a.png").rename(tree / "trip" / "renamed.png")
    output = run(tree)
    # Then it is the same image, now recorded under its new path; nothing was created or deleted
    assert "0 created" in output
    assert "1 renamed" in output
    assert set(Image.objects.values_list("pk", flat=True)) == ids_before
    assert ImportedFile.objects.filter(path=str(tree / "trip" / "renamed.png")).exists()
    assert not ImportedFile.objects.filter(path=str(tree / "a.png")).exists()


def test_missing_files_are_kept_unless_delete_missing(tree, media_root):
    run(tree)
    gone = Image.objects.get(original_filename="b.jpg")
    (tree / "trip" / "b.jpg").unlink()
    assert "1 missing on disk (kept; pass --delete-missing to remove)" in run(tree)
    assert Image.objects.filter(pk=gone.pk).exists()
    output = run(tree, delete_missing=True)
    assert "1 deleted" in output
    assert not Image.objects.filter(pk=gone.pk).exists()
    assert Image.objects.count() == 2
    assert not ImportedFile.objects.filter(path=str(tree / "trip" / "b.jpg")).exists()


def test_an_edited_file_becomes_a_new_image_and_the_old_one_goes_with_delete_missing(tree):
    run(tree)
    old = Image.objects.get(original_filename="a.png")
    path = tree / "a.png"
    path.write_bytes(picture_bytes("PNG", color=(99, 99, 99)))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    output = run(tree, delete_missing=True)
    assert "1 created" in output
    assert "1 deleted" in output
    assert not Image.objects.filter(pk=old.pk).exists()
    assert ImportedFile.objects.get(path=str(path)).image.original_filename == "a.png"


def test_an_interrupted_folder_import_resumes_without_duplicates(tree, monkeypatch):
    # Stopped as soon as the first file is prepared: what was in flight is still recorded, the rest is not read
    stop = threading.Event()
    prepare = folder_import_module.image_prepare

    def prepare_then_stop(**kwargs):
        stop.set()
        return prepare(**kwargs)

    monkeypatch.setattr(folder_import_module, "image_prepare", prepare_then_stop)
    first = folder_import_run(root=tree, workers=1, stop=stop)
    monkeypatch.undo()
    assert first.interrupted is True
    done = Image.objects.count()
    assert 1 <= done < 3
    second = folder_import_run(root=tree, workers=2)
    assert second.interrupted is False
    assert (second.created, second.skipped) == (3 - done, done)
    assert Image.objects.count() == 3
    assert ImportedFile.objects.count() == 3


def test_a_missing_folder_is_one_clear_line(tmp_path):
    with pytest.raises(CommandError, match=r"^No such folder: .*nowhere\.$"):
        run(tmp_path / "nowhere")


def test_renaming_a_whole_folder_is_recognised_file_by_file_by_hash(tmp_path):
    # Given an imported folder of 120 distinct pictures
    root = tmp_path / "library"
    (root / "old").mkdir(parents=True)
    for n in range(120):
        (root / "old" / f"{n}.png").write_bytes(picture_bytes("PNG", color=(n, 255 - n, n // 2)))
    run(root)
    ids_before = set(Image.objects.values_list("pk", flat=True))
    assert len(ids_before) == 120
    # When the folder is renamed (every file vanishes from one path and appears under another)
    (root / "old").rename(root / "new")
    output = run(root, delete_missing=True)
    # Then every file is the same image under its new path: nothing created, nothing deleted, no stale record
    assert "120 renamed" in output
    assert "0 created" in output
    assert set(Image.objects.values_list("pk", flat=True)) == ids_before
    paths = set(ImportedFile.objects.values_list("path", flat=True))
    assert paths == {str(root / "new" / f"{n}.png") for n in range(120)}

"""Import every image under a folder, incrementally: unchanged files skipped, renamed ones recognised by hash."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from images.formats import IMAGE_SUFFIXES
from images.models import Image, ImportedFile

from .decoding import ImageRejectedError
from .importing import EmbedBatcher, ImportInputError, ImportSummary, pipeline_run, report_write
from .ingest import PreparedImage, image_delete, image_prepare, images_record
from .uploads import max_file_bytes

_IMPORTED_FIELDS = ["size", "mtime_ns", "content_hash", "image", "imported_at"]


@dataclass(frozen=True)
class FoundFile:
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class KnownContent:
    """The file's bytes are already an image: no decode needed (a rename or a copy)."""

    content_hash: str
    image_id: int


def folder_scan(*, root: Path) -> list[FoundFile]:
    """Image files under ``root`` (by extension), recursively, skipping hidden files and folders and not following
    symbolic links out of the tree."""
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                found.append(FoundFile(path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns))
    return found


def folder_import_run(
    *,
    root: Path,
    workers: int = 8,
    batch_size: int = 32,
    model_key: str | None = None,
    delete_missing: bool = False,
    report_path: Path | None = None,
    stop: threading.Event | None = None,
    on_total: Callable[[int], None] | None = None,
    on_row: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Ingest new and changed image files under ``root``; record path, size, mtime and hash of each.

    Files are read and decoded on ``workers`` threads and recorded ``batch_size`` at a time (``images_record``),
    each group then enqueued for embedding as one task. Idempotent and resumable: files whose path, size and mtime
    match the last run are skipped without reading; a file whose bytes are already an image (renamed, moved,
    copied) is linked to it without decoding. With ``delete_missing``, images whose files are gone or were edited
    (and that no other imported file holds) are deleted.
    """
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise ImportInputError(f"No such folder: {root}.")
    found = folder_scan(root=root)
    summary = ImportSummary(total=len(found))
    prefix = str(root).rstrip(os.sep) + os.sep
    records = {record.path: record for record in ImportedFile.objects.filter(path__startswith=prefix)}
    by_hash = dict(ImportedFile.objects.exclude(image=None).values_list("content_hash", "image_id"))
    seen = {item.path for item in found}
    # Records of files no longer on disk, by content hash: a renamed file finds its old path in one lookup.
    vanished: dict[str, set[str]] = {}
    for path, rec in records.items():
        if path not in seen:
            vanished.setdefault(rec.content_hash, set()).add(path)
    todo = []
    for item in found:
        known = records.get(item.path)
        if known and known.image_id and (known.size, known.mtime_ns) == (item.size, item.mtime_ns):
            summary.skipped += 1
        else:
            todo.append(item)
    if on_total:
        on_total(len(todo))
    batcher = EmbedBatcher(batch_size=batch_size, model_key=model_key)
    limit = max_file_bytes()
    replaced: set[int] = set()

    def work(item: FoundFile) -> PreparedImage | KnownContent:
        if item.size > limit:
            raise ImageRejectedError(f"The file is {item.size:,} bytes, over the limit of {limit:,}.")
        try:
            data = Path(item.path).read_bytes()
        except OSError as exc:
            raise ImageRejectedError(f"The file cannot be read ({exc.strerror or exc}).") from exc
        content_hash = hashlib.sha256(data).hexdigest()
        if content_hash in by_hash:
            return KnownContent(content_hash=content_hash, image_id=by_hash[content_hash])
        return image_prepare(data=data, content_hash=content_hash)

    def record(item: FoundFile, result: Any) -> None:
        outcome = "failed"
        if isinstance(result, KnownContent) and Image.objects.filter(pk=result.image_id).exists():
            moved_from = sorted(vanished.pop(result.content_hash, set()) - {item.path})
            with transaction.atomic():
                ImportedFile.objects.filter(path__in=moved_from).delete()
                _remember([_imported(item, result.content_hash, result.image_id)])
            for path in moved_from:
                records.pop(path, None)
            summary.renamed += bool(moved_from)
            summary.existing += not moved_from
            outcome = "renamed" if moved_from else "existing"
        elif isinstance(result, KnownContent):  # its image was deleted meanwhile: ingest the file afresh
            by_hash.pop(result.content_hash, None)
            return record(item, _attempt_prepare(item))
        elif isinstance(result, PreparedImage):
            waiting.append((item, result))
            if len(waiting) >= batch_size:
                record_waiting()
            return
        else:
            summary.fail({"path": item.path}, getattr(result, "message", "") or str(result))
        if on_row:
            on_row(outcome)

    def record_waiting() -> None:
        """Record the prepared files waiting, their images and their bookkeeping rows each in one statement."""
        group = waiting[:]
        waiting.clear()
        results = images_record(prepared=[(prepared, os.path.basename(item.path)) for item, prepared in group])
        remembered = []
        for (item, prepared), ingested in zip(group, results, strict=True):
            previous = records.get(item.path)
            if previous is not None and previous.image_id and previous.image_id != ingested.image.pk:
                replaced.add(previous.image_id)  # the file was edited: its old picture may now be orphaned
            remembered.append(_imported(item, prepared.content_hash, ingested.image.pk))
            by_hash[prepared.content_hash] = ingested.image.pk
            summary.created += ingested.created
            summary.existing += not ingested.created
        _remember(remembered)
        for ingested in results:
            if ingested.created:
                batcher.add(ingested.image.pk)
            if on_row:
                on_row("created" if ingested.created else "existing")

    waiting: list[tuple[FoundFile, PreparedImage]] = []
    try:
        summary.interrupted = not pipeline_run(items=todo, work=work, record=record, workers=workers, stop=stop)
        record_waiting()
        gone = [rec for path, rec in records.items() if path not in seen]
        if delete_missing and not summary.interrupted:
            summary.deleted = _forget(gone, replaced)
        else:
            summary.missing = len(gone)
    finally:
        batcher.flush()
        report_write(summary=summary, path=report_path, name=f"folder-{root.name or 'root'}")
    return summary


def _attempt_prepare(item: FoundFile) -> PreparedImage | Exception:
    try:
        return image_prepare(data=Path(item.path).read_bytes())
    except (ImageRejectedError, OSError) as exc:
        return exc


def _imported(item: FoundFile, content_hash: str, image_id: int) -> ImportedFile:
    return ImportedFile(path=item.path, size=item.size, mtime_ns=item.mtime_ns, content_hash=content_hash,
                        image_id=image_id)  # fmt: skip


def _remember(rows: list[ImportedFile]) -> None:
    """Store these bookkeeping rows, replacing any already held for the same paths, in one statement."""
    ImportedFile.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["path"], update_fields=_IMPORTED_FIELDS
    )


def _forget(gone: list[ImportedFile], replaced: set[int]) -> int:
    """Drop the records of vanished files; delete each of their images (and those of edited files) that no
    imported file holds any more."""
    deleted = 0
    ImportedFile.objects.filter(pk__in=[rec.pk for rec in gone]).delete()
    for image_id in {rec.image_id for rec in gone if rec.image_id} | replaced:
        if not ImportedFile.objects.filter(image_id=image_id).exists():
            image = Image.objects.filter(pk=image_id).first()
            if image is not None:
                image_delete(image=image)
                deleted += 1
    return deleted

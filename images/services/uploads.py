"""Uploads of many files at once (admin and REST): zip archives expanded safely, one outcome per file."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from images.models import Image

from .decoding import ImageRejectedError
from .importing import EmbedBatcher
from .ingest import image_ingest

ZIP_MAGIC = b"PK\x03\x04"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class UploadOutcome:
    """``status`` is ``created``, ``existing`` or ``rejected`` (then ``reason`` says why and ``image`` is None)."""

    filename: str
    status: str
    image: Image | None = None
    reason: str = ""


def max_file_bytes() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def max_archive_members() -> int:
    return int(settings.SEMSEARCH_MAX_ARCHIVE_MEMBERS)


def _archive_members(name: str, data: bytes) -> Iterator[tuple[str, bytes | str]]:
    """(member name, bytes) per file in a zip, or (name, reason) for a member that cannot be read safely."""
    limit = max_file_bytes()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield name, f"The zip archive cannot be read ({exc})."
        return
    if len(infos) > max_archive_members():
        yield name, f"The zip archive has {len(infos):,} files, over the limit of {max_archive_members():,}."
        return
    for info in infos:
        member = f"{name}/{info.filename}"
        base = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
        if info.filename.startswith("__MACOSX/") or base.startswith("."):
            continue
        if info.flag_bits & 0x1:
            yield member, "Encrypted zip members are not supported."
            continue
        try:
            with archive.open(info) as handle:
                # Never trust the declared size: read one byte past the limit to detect a zip bomb.
                content = handle.read(limit + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            yield member, f"This zip member cannot be read ({exc})."
            continue
        if len(content) > limit:
            yield member, f"The file is over the limit of {limit:,} bytes."
            continue
        yield member, content


def uploads_ingest(
    *,
    files: Iterable[tuple[str, bytes | str]],
    title: str = "",
    attribution: str = "",
    source_link: str = "",
    tags: Sequence[str] = (),
    uploader: AbstractBaseUser | None = None,
) -> list[UploadOutcome]:
    """Ingest each uploaded file (zip archives: each member), never stopping at a bad one. A ``str`` instead of
    bytes is a reason the file was already refused (e.g. too large), reported as ``rejected``.

    Every file is its own transaction, so what was stored stays stored when a later file is rejected; re-sending
    the whole batch is harmless (duplicates come back as ``existing``). The new images are enqueued for embedding
    together, a task per ``SEMSEARCH_EMBED_BATCH_SIZE`` of them as soon as that many are stored (so the worker
    starts while the rest of the request is still being read), the remainder at the end, also when a later file
    raised.
    """
    outcomes: list[UploadOutcome] = []
    batcher = EmbedBatcher(batch_size=int(settings.SEMSEARCH_EMBED_BATCH_SIZE), model_key=None)

    def ingest(name: str, data: bytes | str) -> None:
        shown = _UNPRINTABLE.sub("_", name)[:500] or "(unnamed)"
        if isinstance(data, str):
            outcomes.append(UploadOutcome(filename=shown, status="rejected", reason=data))
            return
        try:
            result = image_ingest(data=data, filename=name, title=title, attribution=attribution,
                                  source_link=source_link, tags=tags, uploader=uploader, enqueue=False)  # fmt: skip
        except ImageRejectedError as exc:
            outcomes.append(UploadOutcome(filename=shown, status="rejected", reason=exc.message))
            return
        if result.created:
            batcher.add(result.image.pk)
        status = "created" if result.created else "existing"
        outcomes.append(UploadOutcome(filename=shown, status=status, image=result.image))

    try:
        for name, data in files:
            if isinstance(data, bytes) and data.startswith(ZIP_MAGIC) and name.lower().endswith(".zip"):
                for member, content in _archive_members(name, data):
                    ingest(member, content)
            else:
                ingest(name, data)
    finally:
        batcher.flush()
    return outcomes


def uploaded_file_read(*, name: str, size: int, chunks: Iterable[bytes]) -> bytes | str:
    """The bytes of an uploaded file, or a reason string when it is over the per-file limit (not read then)."""
    limit = max_file_bytes()
    if size > limit:
        return f"The file is {size:,} bytes, over the limit of {limit:,}."
    return b"".join(chunks)

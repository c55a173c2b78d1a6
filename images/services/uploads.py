"""Uploads of many files at once (admin and REST): zip archives expanded safely, one outcome per file."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from images.models import Image

from .decoding import ImageRejectedError
from .importing import EmbedBatcher
from .ingest import IngestResult, image_ingest, image_prepare, images_record

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

    Files go in groups of ``SEMSEARCH_EMBED_BATCH_SIZE``: each file is checked and decoded on its own (a rejected
    one holds up nothing), then the group's new images are recorded in one transaction (``images_record``), so
    what was stored stays stored when a later file is rejected; re-sending the whole batch is harmless (duplicates
    come back as ``existing``). Each group's new images are enqueued for embedding as one task as soon as they are
    stored (so the worker starts while the rest of the request is still being read), also when a later file raised.
    """
    size = int(settings.SEMSEARCH_EMBED_BATCH_SIZE)
    batcher = EmbedBatcher(batch_size=size, model_key=None)
    provenance: dict[str, Any] = {"title": title, "attribution": attribution, "source_link": source_link,
                                  "tags": tags, "uploader": uploader}  # fmt: skip
    outcomes: list[UploadOutcome] = []
    group: list[tuple[int, str, bytes]] = []  # (index in outcomes, name, bytes) of files not yet ingested

    def ingest(name: str, data: bytes | str) -> None:
        shown = _UNPRINTABLE.sub("_", name)[:500] or "(unnamed)"
        outcomes.append(UploadOutcome(filename=shown, status="rejected", reason=data if isinstance(data, str) else ""))
        if isinstance(data, bytes):
            group.append((len(outcomes) - 1, name, data))
            if len(group) >= size:
                ingest_group()

    def ingest_group() -> None:
        """Ingest the files waiting: known bytes merged, the rest decoded and stored, then recorded together."""
        files, prepared = group[:], []
        group.clear()
        hashes = [hashlib.sha256(data).hexdigest() for _, _, data in files]
        known = set(Image.objects.filter(content_hash__in=hashes).values_list("content_hash", flat=True))
        for (index, name, data), content_hash in zip(files, hashes, strict=True):
            try:
                if content_hash in known:  # no second decode of bytes checked once already
                    _settle(index, image_ingest(data=data, filename=name, enqueue=False, **provenance))
                else:
                    prepared.append((index, image_prepare(data=data, content_hash=content_hash), name))
            except ImageRejectedError as exc:
                outcomes[index] = replace(outcomes[index], reason=exc.message)
        recorded = images_record(prepared=[(item, name) for _, item, name in prepared], **provenance)
        for (index, _, _), result in zip(prepared, recorded, strict=True):
            _settle(index, result)

    def _settle(index: int, result: IngestResult) -> None:
        if result.created:
            batcher.add(result.image.pk)
        status = "created" if result.created else "existing"
        outcomes[index] = replace(outcomes[index], status=status, image=result.image)

    try:
        for name, data in files:
            if isinstance(data, bytes) and data.startswith(ZIP_MAGIC) and name.lower().endswith(".zip"):
                for member, content in _archive_members(name, data):
                    ingest(member, content)
            else:
                ingest(name, data)
        ingest_group()
    finally:
        batcher.flush()
    return outcomes


def uploaded_file_read(*, name: str, size: int, chunks: Iterable[bytes]) -> bytes | str:
    """The bytes of an uploaded file, or a reason string when it is over the per-file limit (not read then)."""
    limit = max_file_bytes()
    if size > limit:
        return f"The file is {size:,} bytes, over the limit of {limit:,}."
    return b"".join(chunks)

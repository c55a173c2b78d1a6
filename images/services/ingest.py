"""The one ingestion service every entry point uses (admin, REST, CSV, folders), plus re-embed and delete."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial, update_wrapper
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from core.dispatch import EMBED_IMAGES, task_send, task_send_on_commit
from images.filters import tag_normalise
from images.formats import BY_NAME
from images.models import Image, ImageStatus

from .decoding import decode_image
from .storage import (
    THUMBNAIL_EXT,
    media_file_delete,
    media_file_exists,
    media_file_write,
    media_name,
    thumbnail_render,
)

logger = logging.getLogger(__name__)

MAX_TAGS = 50
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")


@dataclass(frozen=True)
class PreparedImage:
    """Decoded, checked and stored on disk, but not yet recorded in the database."""

    content_hash: str
    original_name: str
    thumbnail_name: str
    width: int
    height: int
    format: str
    file_size: int


@dataclass(frozen=True)
class IngestResult:
    image: Image
    created: bool


def filename_clean(name: str) -> str:
    """The last path component of ``name``, without control or shell-hostile characters, at most 255 characters
    (the extension kept). Only ever stored as metadata: files are named by their hash."""
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_FILENAME.sub("_", base).strip(" .")
    if len(base) > 255:
        stem, dot, ext = base.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        base = (stem if ext else base)[: 255 - len(ext) - 1].rstrip(" .") + ("." + ext if ext else "")
    return base[:255]


def tags_clean(tags: Iterable[str]) -> list[str]:
    """Lower-cased, stripped, de-duplicated (order kept), each at most 64 characters, at most 50."""
    seen: list[str] = []
    for tag in tags:
        clean = tag_normalise(tag)
        if clean and clean not in seen:
            seen.append(clean)
    return seen[:MAX_TAGS]


def _url_clean(url: str) -> str:
    url = (url or "").strip()
    return url if len(url) <= 2000 else ""


def image_prepare(*, data: bytes, content_hash: str | None = None) -> PreparedImage:
    """Decode ``data`` safely and write its original and thumbnail under content-addressed names (``content_hash``:
    its sha256 where the caller has it already, so a 4000×3000 photo is not hashed twice).

    Raises ``ImageRejectedError``. Touches no database, so it is safe in worker threads. Idempotent.
    """
    # JPEGs decode at the smallest DCT scale that still covers the thumbnail (a 1024×768 photo at 384×288, the
    # thumbnail itself), and the vectors made from the thumbnail stay within cosine 0.9998 of the original's
    # (bench/decode_once.py, option thumbnail_turbo).
    decoded = decode_image(data, max_side=int(settings.SEMSEARCH_THUMBNAIL_SIZE))
    content_hash = content_hash or hashlib.sha256(data).hexdigest()
    original_name = media_name(kind="originals", content_hash=content_hash, ext=BY_NAME[decoded.format].extension)
    thumbnail_name = media_name(kind="thumbnails", content_hash=content_hash, ext=THUMBNAIL_EXT)
    media_file_write(name=original_name, data=data)
    if not media_file_exists(name=thumbnail_name):
        media_file_write(name=thumbnail_name, data=thumbnail_render(image=decoded.image))
    return PreparedImage(content_hash=content_hash, original_name=original_name, thumbnail_name=thumbnail_name,
                         width=decoded.width, height=decoded.height, format=decoded.format,
                         file_size=len(data))  # fmt: skip


def image_embedding_enqueue(*, image_ids: Sequence[int], model_key: str | None = None, at_once: bool = False) -> None:
    """Send ``embed_images`` for these ids, in chunks of ``SEMSEARCH_EMBED_BATCH_SIZE``, once the current
    transaction commits (at once outside one). The one place embedding work is enqueued.

    A broker that is down is logged, not raised: the rows stay ``pending`` and the periodic re-queue picks them up.
    ``at_once`` (the re-queue itself, ``embed_pending``, a model switch) sends now, inside any transaction, and lets
    a broker error propagate so the caller can retry.
    """
    ids = list(dict.fromkeys(int(pk) for pk in image_ids))
    size = max(1, int(settings.SEMSEARCH_EMBED_BATCH_SIZE))
    extra: dict[str, Any] = {"model_key": model_key} if model_key else {}
    send = task_send if at_once else task_send_on_commit
    for start in range(0, len(ids), size):
        send(EMBED_IMAGES, image_ids=ids[start : start + size], **extra)


def _provenance_fields(
    *, filename: str, source_url: str, source_link: str, title: str, attribution: str, uploader: AbstractBaseUser | None
) -> dict:
    return {
        "original_filename": filename_clean(filename),
        "source_url": _url_clean(source_url),
        "source_link": _url_clean(source_link),
        "title": " ".join((title or "").split())[:500],
        "attribution": " ".join((attribution or "").split())[:500],
        "uploader": uploader if uploader is not None and uploader.is_authenticated else None,
    }


def _provenance_merge(image: Image, *, fields: dict, tags: list[str], retry_failed: bool) -> Image:
    """Fill blank provenance on an existing image and add new tags; a ``failed`` one goes back to ``pending``."""
    with transaction.atomic():
        image = Image.objects.select_for_update().get(pk=image.pk)
        changed = [name for name, value in fields.items() if value and not getattr(image, name)]
        for name in changed:
            setattr(image, name, fields[name])
        merged = image.tags + [tag for tag in tags if tag not in image.tags]
        if merged != image.tags:
            image.tags = merged[:MAX_TAGS]
            changed.append("tags")
        if image.status == ImageStatus.FAILED and retry_failed:
            image.status, image.failure_reason = ImageStatus.PENDING, ""
            changed += ["status", "failure_reason"]
            image_embedding_enqueue(image_ids=[image.pk])
        if changed:
            image.save(update_fields=[*changed, "updated_at"])
    return image


def image_record(
    *,
    prepared: PreparedImage,
    filename: str = "",
    source_url: str = "",
    source_link: str = "",
    title: str = "",
    attribution: str = "",
    tags: Sequence[str] = (),
    uploader: AbstractBaseUser | None = None,
    enqueue: bool = True,
    model_key: str | None = None,
    looked_up: bool = False,
) -> IngestResult:
    """Create the ``pending`` row for a prepared image (embedding enqueued on commit unless ``enqueue`` is False),
    or merge provenance into the existing row with the same hash. Safe against a concurrent insert of the same
    bytes: the loser of the race gets the winner's row. ``looked_up``: the caller has just found no row with this
    hash, so the insert is tried at once (a row stored since is still caught by the unique hash)."""
    fields = _provenance_fields(filename=filename, source_url=source_url, source_link=source_link, title=title,
                                attribution=attribution, uploader=uploader)  # fmt: skip
    clean_tags = tags_clean(tags)
    existing = None if looked_up else Image.objects.filter(content_hash=prepared.content_hash).first()
    if existing is not None:
        return IngestResult(_provenance_merge(existing, fields=fields, tags=clean_tags, retry_failed=True), False)
    try:
        with transaction.atomic():
            image = Image.objects.create(
                content_hash=prepared.content_hash, original=prepared.original_name,
                thumbnail=prepared.thumbnail_name, width=prepared.width, height=prepared.height,
                format=prepared.format, file_size=prepared.file_size, tags=clean_tags,
                status=ImageStatus.PENDING, **fields,
            )  # fmt: skip
            if enqueue:
                image_embedding_enqueue(image_ids=[image.pk], model_key=model_key)
    except IntegrityError:
        existing = Image.objects.filter(content_hash=prepared.content_hash).first()
        if existing is None:
            raise
        return IngestResult(_provenance_merge(existing, fields=fields, tags=clean_tags, retry_failed=False), False)
    return IngestResult(image, True)


def images_record(
    *,
    prepared: Sequence[tuple[PreparedImage, str]],
    source_link: str = "",
    title: str = "",
    attribution: str = "",
    tags: Sequence[str] = (),
    uploader: AbstractBaseUser | None = None,
) -> list[IngestResult]:
    """``image_record`` for many prepared images, each with its file name, sharing the other provenance; results in
    the same order, nothing enqueued (the caller batches that).

    The new ones are looked up in one query and inserted in one statement, in one transaction (one row's ORM round
    trip cost about as much as decoding a 1024×768 photo); a hash seen before, in the catalogue or earlier in the
    same call, is merged as ``image_record`` does. Should another process insert one of the same bytes meanwhile,
    the insert rolls back and every image is recorded on its own instead, which resolves that race.
    """
    if not prepared:
        return []
    shared: dict[str, Any] = {"source_link": source_link, "title": title, "attribution": attribution,
                              "uploader": uploader}  # fmt: skip
    fields = _provenance_fields(filename="", source_url="", **shared)
    fields.pop("original_filename")
    clean_tags = tags_clean(tags)
    hashes = [item.content_hash for item, _ in prepared]
    known = set(Image.objects.filter(content_hash__in=hashes).values_list("content_hash", flat=True))
    fresh: dict[str, Image] = {}
    for item, filename in prepared:
        if item.content_hash not in known and item.content_hash not in fresh:
            fresh[item.content_hash] = Image(
                content_hash=item.content_hash, original=item.original_name, thumbnail=item.thumbnail_name,
                width=item.width, height=item.height, format=item.format, file_size=item.file_size,
                tags=clean_tags, status=ImageStatus.PENDING, original_filename=filename_clean(filename), **fields,
            )  # fmt: skip
    try:
        with transaction.atomic():
            Image.objects.bulk_create(list(fresh.values()))
    except IntegrityError:
        return [image_record(prepared=item, filename=name, enqueue=False, tags=tags, **shared)
                for item, name in prepared]  # fmt: skip
    results = []
    for item, filename in prepared:
        row = fresh.pop(item.content_hash, None)
        if row is not None:
            results.append(IngestResult(row, True))
        else:  # in the catalogue already, or a second file with the same bytes
            results.append(image_record(prepared=item, filename=filename, enqueue=False, tags=tags, **shared))
    return results


def image_ingest(
    *,
    data: bytes,
    filename: str = "",
    source_url: str = "",
    source_link: str = "",
    title: str = "",
    attribution: str = "",
    tags: Sequence[str] = (),
    uploader: AbstractBaseUser | None = None,
    enqueue: bool = True,
    model_key: str | None = None,
) -> IngestResult:
    """Check, decode and store ``data``; create its ``pending`` Image and enqueue embedding on commit.

    The same bytes again return the existing image (``created=False``) with blank provenance filled and tags added;
    no error, no duplicate, also under concurrency. Raises ``ImageRejectedError`` (nothing stored) for bad input.
    """
    content_hash = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(content_hash=content_hash).first()
    if existing is not None and media_file_exists(name=existing.original.name):
        # Known bytes: already decoded and checked once, so no second decode.
        fields = _provenance_fields(filename=filename, source_url=source_url, source_link=source_link, title=title,
                                    attribution=attribution, uploader=uploader)  # fmt: skip
        return IngestResult(_provenance_merge(existing, fields=fields, tags=tags_clean(tags), retry_failed=True), False)
    prepared = image_prepare(data=data, content_hash=content_hash)
    return image_record(prepared=prepared, tags=tags, enqueue=enqueue, model_key=model_key, filename=filename,
                        source_url=source_url, source_link=source_link, title=title, attribution=attribution,
                        uploader=uploader, looked_up=existing is None)  # fmt: skip


def images_reembed(*, image_ids: Sequence[int], model_key: str | None = None) -> int:
    """Reset these images to ``pending`` and enqueue embedding on commit; returns how many exist. Idempotent."""
    ids = list(Image.objects.filter(pk__in=list(image_ids)).values_list("pk", flat=True))
    with transaction.atomic():
        Image.objects.filter(pk__in=ids).update(status=ImageStatus.PENDING, failure_reason="")
        image_embedding_enqueue(image_ids=ids, model_key=model_key)
    return len(ids)


def image_delete(*, image: Image) -> None:
    """Delete the row (its embeddings cascade) and, once that commits, its files. Idempotent."""
    names = [image.original.name, image.thumbnail.name]
    with transaction.atomic():
        # Lock the row first: a worker storing this image's embedding holds the same lock, so the delete waits for
        # it and then cascades to the new embedding, instead of failing on the foreign key at commit.
        Image.objects.select_for_update().filter(pk=image.pk).exists()
        Image.objects.filter(pk=image.pk).delete()
        for name in names:
            # Named: Django's robust on_commit logs the callback's __qualname__, which a bare partial lacks.
            callback = update_wrapper(partial(media_file_delete, name=name), media_file_delete)
            transaction.on_commit(callback, robust=True)

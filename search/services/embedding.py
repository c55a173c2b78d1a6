"""Computing and storing image embeddings (``embedding_compute``): claimed in full batches, safely."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from PIL import Image as PILImage

from core.metrics import EMBED_BATCH_SECONDS, IMAGES_EMBEDDED
from images.models import Image, ImageStatus
from images.services.storage import media_file_exists, media_source
from search.embeddings import get_encoder
from search.enrichment import enrichment_after_embedding
from search.models import Embedding
from search.state import UnknownModelError, active_model_key, model_source

logger = logging.getLogger(__name__)

# Batches claimed together: the decoder prepares the next while the model runs one (on PostgreSQL they commit
# together, so a crash redoes at most this many). Only a claim's first batch waits for its decoding.
CLAIM_BATCHES = 4
# Once its own images are done, a task goes on claiming other waiting images this long (while claims come back
# full), so a backlog streams through the model without a pause for each task's message; then it yields the worker.
DRAIN_SECONDS = 20.0
_CLAIMED_FIELDS = ("id", "original", "thumbnail", "width", "height")


def _model_input(image: Image, spec: Any) -> str | bytes | None:
    """What the model reads for ``image`` (a local path, or bytes from another storage): its stored thumbnail when
    that holds at least the pixels the model's resize keeps (decoding it costs a fraction of the original, and its
    vectors stay within cosine 0.999 of the original's: ``bench/decode_once.py``), else the original. None when
    the original is missing."""
    if not media_file_exists(name=image.original.name):
        return None
    if spec is not None and settings.SEMSEARCH_EMBED_FROM_THUMBNAIL and image.thumbnail:
        thumbnail = media_source(name=image.thumbnail.name)
        if thumbnail is not None and _holds(thumbnail, spec.resize_target(image.width, image.height)):
            return thumbnail
    return media_source(name=image.original.name)


def _holds(source: str | bytes, target: tuple[int, int]) -> bool:
    """Whether the picture at ``source`` is at least ``target`` (width, height); reads only its header."""
    try:
        with PILImage.open(source if isinstance(source, str) else io.BytesIO(source)) as handle:
            width, height = handle.size
    except OSError:
        return False
    return width >= target[0] and height >= target[1]


def _store_batch(*, model_key: str, ids: list[int], vectors: np.ndarray, mark_ready: bool) -> int:
    """Store one batch's vectors and mark their images ready, atomically; images deleted meanwhile are skipped."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    with transaction.atomic():
        # Locking the rows (PostgreSQL) keeps a concurrent delete from breaking the foreign keys at commit.
        alive = set(Image.objects.select_for_update().filter(id__in=ids).values_list("id", flat=True))
        rows = [
            Embedding(image_id=image_id, model_key=model_key, dimension=vectors.shape[1], vector=vectors[i].tobytes())
            for i, image_id in enumerate(ids)
            if image_id in alive
        ]
        Embedding.objects.bulk_create(rows, ignore_conflicts=True)
        if mark_ready:
            Image.objects.filter(id__in=alive).exclude(status=ImageStatus.READY).update(
                status=ImageStatus.READY, failure_reason=""
            )
    return len(rows)


def _mark_failed(failures: list[tuple[int, str]]) -> None:
    for image_id, message in failures:
        Image.objects.filter(id=image_id).update(status=ImageStatus.FAILED, failure_reason=message[:2000])


@contextmanager
def _claimed(*, model_key: str, own: Sequence[int], size: int, fill_status: Sequence[str]) -> Iterator[list[Image]]:
    """Up to ``size`` images to embed: first those of ``own`` still lacking a ``model_key`` embedding, then other
    images in ``fill_status`` lacking one (oldest first). Where the database can (PostgreSQL), the rows stay locked
    (``FOR UPDATE SKIP LOCKED``) in a transaction until the block ends, so no other worker claims the same image;
    rows another worker holds are skipped. SQLite has one writer and one worker: no lock, no long transaction."""
    locking = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if locking else nullcontext():
        rows = Image.objects.select_for_update(skip_locked=True) if locking else Image.objects.all()
        lacking = ~Exists(Embedding.objects.filter(image_id=OuterRef("pk"), model_key=model_key))
        images = (
            list(rows.filter(lacking, id__in=list(own)).order_by("id").only(*_CLAIMED_FIELDS)[:size]) if own else []
        )
        if (images or not own) and len(images) < size:
            fill = rows.filter(lacking, status__in=list(fill_status)).exclude(id__in=[image.id for image in images])
            images += list(fill.order_by("id").only(*_CLAIMED_FIELDS)[: size - len(images)])
        if images:
            # A fresh statement sees what a worker committed while this one waited to lock: never embed twice.
            done = set(Embedding.objects.filter(model_key=model_key, image_id__in=[i.id for i in images])
                       .values_list("image_id", flat=True))  # fmt: skip
            images = [image for image in images if image.id not in done]
        yield images


def embedding_compute(*, image_ids: Sequence[int], model_key: str | None = None) -> dict[str, Any]:
    """Embed the given images with ``model_key`` (default: the active model) and store their vectors.

    Images are claimed ``CLAIM_BATCHES`` batches of ``SEMSEARCH_EMBED_BATCH_SIZE`` at a time: some of the given
    images, filled up with other images still waiting for this model (``pending`` ones for the active model), so
    single-image tasks still reach the model in full batches; the tasks of the filled-in images then find nothing
    left to do. Once the given images are done, it goes on claiming waiting images while claims come back full, for
    up to ``DRAIN_SECONDS`` (a backlog streams through without a pause per task). Claiming is safe (see
    ``_claimed``): two workers never embed the same image.

    Idempotent: images that already have an embedding for the model are skipped (and, for the active model, left
    or made ``ready``); ids of deleted images are ignored. Each claim is committed on its own (each batch, on
    SQLite): its embeddings are stored and, for the active model, its images marked ``ready`` in one transaction,
    so a crash loses at most the claim in flight and a rerun finishes the rest. An image that cannot be read is
    marked ``failed`` with the reason and does not hold up the others. The model reads the stored thumbnail where
    it is large enough (see ``_model_input``). Raises ``ModelUnavailableError`` when the model cannot be
    loaded. Returns ``{"model_key", "embedded", "filled", "skipped", "failed", "failures"}`` (``filled``: how many
    of the embedded images were not among ``image_ids``).
    """
    key = model_key or active_model_key()
    mark_ready = key == active_model_key()
    wanted = list(dict.fromkeys(int(i) for i in image_ids))
    done = set(Embedding.objects.filter(model_key=key, image_id__in=wanted).values_list("image_id", flat=True))
    if done and mark_ready:
        Image.objects.filter(id__in=done, status=ImageStatus.PENDING).update(status=ImageStatus.READY)
    own = [i for i in wanted if i not in done]
    result: dict[str, Any] = {"model_key": key, "embedded": 0, "filled": 0, "skipped": 0, "failed": 0,
                              "failures": []}  # fmt: skip
    fill_status = [ImageStatus.PENDING] if mark_ready else [ImageStatus.PENDING, ImageStatus.READY]
    size = max(1, int(settings.SEMSEARCH_EMBED_BATCH_SIZE))
    encoder = None
    handled: set[int] = set()
    claim = size * CLAIM_BATCHES
    started = time.monotonic()
    while own or time.monotonic() - started < DRAIN_SECONDS:
        draining = not own
        with _claimed(model_key=key, own=own, size=claim, fill_status=fill_status) as images:
            mine = {image.id for image in images} & set(own)
            if not mine and not (draining and images):
                break  # the rest are embedded, deleted, or being embedded by another worker right now
            own = [i for i in own if i not in mine]
            encoder = encoder or _encoder(key)
            _embed_claimed(encoder=encoder, model_key=key, images=images, size=size, mark_ready=mark_ready,
                           result=result)  # fmt: skip
            handled.update(image.id for image in images)
        if draining and len(images) < claim:
            break  # nothing more is waiting (or other workers hold it)
    result["filled"] = len(handled - set(wanted) - {i for i, _ in result["failures"]})
    result["skipped"] = len([i for i in wanted if i not in handled])
    if result["failures"]:
        logger.warning("%d image(s) could not be embedded with %s: %s", len(result["failures"]), key,
                       "; ".join(f"{i}: {m}" for i, m in result["failures"][:5]))  # fmt: skip
    result["failed"] = len(result["failures"])
    return result


def _encoder(model_key: str) -> Any:
    model_id, revision = model_source(model_key=model_key)
    encoder = get_encoder(model_id, revision or None)
    if encoder.model_key != model_key:
        raise UnknownModelError(
            f"{model_id} now produces key {encoder.model_key!r}, not {model_key!r} (weights changed)"
        )
    return encoder


def _embed_claimed(
    *, encoder: Any, model_key: str, images: list[Image], size: int, mark_ready: bool, result: dict
) -> None:
    """Encode claimed images in batches of ``size``, store each batch's vectors (``ready`` for the active model),
    mark unreadable ones failed."""
    started = time.perf_counter()
    failures: list[tuple[int, str]] = []
    items: list[tuple[int, str | bytes]] = []
    for image in images:
        source = _model_input(image, encoder.image_spec)
        if source is None:
            failures.append((image.id, f"the original file {image.original.name or '(none)'} is missing"))
        else:
            items.append((image.id, source))
    for ids, vectors, errors in encoder.encode_image_batches(items, batch_size=size, share_cores=True):
        if ids:
            stored = _store_batch(model_key=model_key, ids=list(ids), vectors=vectors, mark_ready=mark_ready)
            enrichment_after_embedding(model_key=model_key, image_ids=list(ids), vectors=vectors, active=mark_ready)
            result["embedded"] += stored
            IMAGES_EMBEDDED.labels(model_key=model_key).inc(stored)
        failures.extend(errors)
        EMBED_BATCH_SECONDS.observe(time.perf_counter() - started)
        started = time.perf_counter()
    _mark_failed(failures)
    result["failures"].extend(failures)

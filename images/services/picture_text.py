"""Storing the text read from each picture (``picture_text_compute``); the engine itself is ``ocr``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from core.metrics import OCR_PICTURES
from images.models import Image, ImageStatus, PictureText, PictureTextStatus
from images.services.decoding import decode_image
from images.services.ocr import OcrUnavailableError, ocr_engine_name, ocr_read
from images.services.storage import media_source

logger = logging.getLogger(__name__)


def picture_text_words(*, text: str) -> str:
    """The searchable form of ``text``: lower-cased alphanumeric words, single-spaced, with a space at each end."""
    words = ("".join(ch for ch in token if ch.isalnum()) for token in text.lower().split())
    joined = " ".join(word for word in words if word)
    return f" {joined} " if joined else ""


def picture_text_should_wait() -> bool:
    """Whether reading text should wait: images are still waiting for their embedding. On a worker that serves
    both queues, OCR then yields the CPU so that it never delays an image becoming searchable. One indexed query."""
    return Image.objects.filter(status=ImageStatus.PENDING).exists()


def picture_text_compute(
    *, image_ids: Sequence[int], force: bool = False, yield_to_embedding: bool = False
) -> dict[str, Any]:
    """Read the text of each image and store it as its ``PictureText`` (``done``, possibly empty, or ``failed``).

    Idempotent: images already read are skipped unless ``force``. Never touches ``Image.status``: a picture that
    cannot be read, or takes longer than ``SEMSEARCH_OCR_TIMEOUT_SECONDS``, gets a ``failed`` row with the reason and
    stays searchable. Deleted images are ignored. Does nothing when ``SEMSEARCH_OCR`` is off; raises
    ``OcrUnavailableError`` when the engine is missing (nothing is stored, so a later run can still read them).
    With ``yield_to_embedding``, it stops before any picture while images wait for their embedding
    (``picture_text_should_wait``) and returns the ids it left in ``deferred_ids``, so a worker serving both queues
    turns to a fresh upload after at most one picture's reading. Returns ``{"read", "failed", "skipped",
    "deferred_ids"}``.
    """
    result: dict[str, Any] = {"read": 0, "failed": 0, "skipped": 0, "deferred_ids": []}
    if not settings.SEMSEARCH_OCR:
        result["skipped"] = len(image_ids)
        return result
    engine = ocr_engine_name()
    images = Image.objects.filter(id__in=list(image_ids)).only("id", "original").order_by("id")
    if not force:
        images = images.exclude(picture_text__isnull=False)
    todo = list(images)
    result["skipped"] = len(set(image_ids)) - len(todo)
    for position, image in enumerate(todo):
        if yield_to_embedding and picture_text_should_wait():
            result["deferred_ids"] = [later.pk for later in todo[position:]]
            break
        row = _read_one(image=image, engine=engine)
        if not Image.objects.filter(pk=image.pk).exists():
            continue  # deleted while it was being read
        PictureText.objects.update_or_create(image_id=image.pk, defaults=row)
        result["read" if row["status"] == PictureTextStatus.DONE else "failed"] += 1
        OCR_PICTURES.labels(status=row["status"]).inc()
    return result


def _read_one(*, image: Image, engine: str) -> dict[str, Any]:
    try:
        source = media_source(name=image.original.name or "")
        if source is None:
            raise FileNotFoundError(f"the original file {image.original.name or '(none)'} is missing")
        data = source if isinstance(source, bytes) else _read_file(source)
        # JPEGs decode at a reduced scale straight away: OCR reads at most SEMSEARCH_OCR_MAX_SIDE pixels anyway.
        reading = ocr_read(picture=decode_image(data, max_side=settings.SEMSEARCH_OCR_MAX_SIDE).image)
    except OcrUnavailableError:
        raise
    except Exception as exc:  # one unreadable picture never fails the image or the batch
        logger.warning("OCR of image %s failed: %s", image.pk, exc)
        message = f"{type(exc).__name__}: {exc}"[:2000]
        return {"text": "", "words": "", "engine": engine, "status": PictureTextStatus.FAILED, "error": message}
    return {"text": reading.text, "words": picture_text_words(text=reading.text), "engine": engine,
            "status": PictureTextStatus.DONE, "error": "", "seconds": reading.seconds}  # fmt: skip


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()

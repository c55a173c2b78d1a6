"""Shared helpers for the search tests: catalogue rows with hand-made vectors, and a toy-model corpus.

Imported by the other ``test_search*``/``test_api*``/``test_ui*`` modules; it holds no tests itself.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime

import numpy as np
from django.utils import timezone

from images.models import Image, ImageStatus
from search.models import Embedding

_counter = itertools.count(1)
HAND_MODEL_KEY = "hand-made@test"


def image_make(
    *,
    title: str = "",
    status: str = ImageStatus.READY,
    width: int = 640,
    height: int = 480,
    format: str = "PNG",
    tags: list[str] | None = None,
    uploader=None,
    created_at: datetime | None = None,
) -> Image:
    """An Image row (no file behind it) with a unique content hash."""
    n = next(_counter)
    image = Image.objects.create(
        content_hash=hashlib.sha256(f"img-{n}-{title}".encode()).hexdigest(),
        original=f"originals/test-{n}.png",
        thumbnail=f"thumbnails/test-{n}.webp",
        width=width,
        height=height,
        format=format,
        title=title or f"picture {n}",
        tags=tags or [],
        uploader=uploader,
        status=status,
    )
    if created_at is not None:
        Image.objects.filter(pk=image.pk).update(created_at=created_at)
        image.refresh_from_db()
    return image


def unit(values: list[float] | np.ndarray, dimension: int = 8) -> np.ndarray:
    vector = np.zeros(dimension, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def embedding_add(image: Image, vector: np.ndarray, model_key: str = HAND_MODEL_KEY) -> Embedding:
    vector = np.asarray(vector, dtype="<f4")
    return Embedding.objects.create(
        image=image, model_key=model_key, dimension=vector.shape[0], vector=vector.tobytes()
    )


def days_ago(days: float) -> datetime:
    return timezone.now() - timezone.timedelta(days=days)


# --- the toy model -------------------------------------------------------------------------------------------------
TOY_COLOURS = ("red", "blue", "green", "yellow")
_TOY_VECTORS: dict[str, np.ndarray] = {}  # content hash -> vector: each picture is encoded once per session


def toy_model_use(settings) -> str:
    """Point the project at the bundled toy model (pytest-django ``settings``); returns its model key."""
    from search.embeddings import get_encoder
    from search.index import reader_reset
    from search.state import active_model_key_forget

    settings.SEMSEARCH_MODEL_ID = "toy"
    settings.SEMSEARCH_MODEL_REVISION = ""
    active_model_key_forget()
    reader_reset()
    return get_encoder("toy").model_key


def toy_picture_bytes(*, kind: str, colour: str, seed: int = 0, background: str = "white", count: int = 1,
                      position: str = "centre", fmt: str = "PNG") -> bytes:  # fmt: skip
    import io

    from search.embeddings.toy_data import render_shape_picture

    picture = render_shape_picture(
        kind=kind, colour=colour, count=count, background=background, position=position, seed=seed
    )
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


def toy_corpus(*, kinds: tuple[str, ...] | None = None, colours: tuple[str, ...] = TOY_COLOURS) -> list[Image]:
    """One ready, embedded picture per (kind, colour) — a single shape in the centre of a white picture —
    ingested through ``image_ingest`` (files and thumbnails are real) and titled with its plain caption.
    Tags: the kind and the colour."""
    from images.services import image_ingest
    from search.embeddings import get_encoder
    from search.embeddings.toy_data import KINDS, ShapeAttributes, canonical_caption

    encoder = get_encoder("toy")
    specs = [(kind, colour) for kind in kinds or KINDS for colour in colours]
    datas = [toy_picture_bytes(kind=kind, colour=colour, seed=n) for n, (kind, colour) in enumerate(specs)]
    digests = [hashlib.sha256(data).hexdigest() for data in datas]
    missing = [n for n, digest in enumerate(digests) if digest not in _TOY_VECTORS]
    if missing:
        for n, vector in zip(missing, encoder.encode_images([datas[n] for n in missing]), strict=True):
            _TOY_VECTORS[digests[n]] = vector
    images = []
    for (kind, colour), data, digest in zip(specs, datas, digests, strict=True):
        caption = canonical_caption(ShapeAttributes(kind, colour, 1, "white", "centre"))
        image = image_ingest(data=data, title=caption, tags=[kind, colour], enqueue=False).image
        embedding_add(image, _TOY_VECTORS[digest], model_key=encoder.model_key)
        Image.objects.filter(pk=image.pk).update(status=ImageStatus.READY)
        image.status = ImageStatus.READY
        images.append(image)
    return images

"""Turning weighted query terms into one normalised query vector.

Text and pictures are encoded by the model (short texts through an LRU cache), image ids use their stored vectors
(never re-encoded), URLs are fetched through the ingestion's guarded fetcher. The weighted sum is L2-normalised.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from images.models import Image, ImageStatus
from search.embeddings import get_encoder, loaded_encoder, on_inference_thread
from search.embeddings.inference import start_on_inference_thread
from search.index import stored_vectors
from search.query import QueryError, QueryTerm
from search.state import active_model, active_model_key

if TYPE_CHECKING:
    from search.embeddings import Encoder

TEXT_CACHE_MAX_CHARS = 100  # only short texts are cached: they are the ones people repeat
TEXT_CACHE_SIZE = 4096


class _LruCache:
    """A small thread-safe LRU map of (model key, text) to vector. A cache, never a source of truth."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is cached; neither counts as a hit or miss nor refreshes its recency."""
        with self._lock:
            return key in self._items

    def put(self, key: tuple[str, str], value: np.ndarray) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


TEXT_VECTOR_CACHE = _LruCache(TEXT_CACHE_SIZE)


@dataclass
class QueryVector:
    """The normalised query vector, the model key it lives in, and notes for the user (e.g. truncation)."""

    vector: np.ndarray
    model_key: str
    notices: list[str] = field(default_factory=list)


def query_model_key(*, model_id: str | None) -> str:
    """The model key searches run against: ``model_id``'s encoder if given, else the active model's key."""
    if model_id:
        return _encoder(model_id).model_key
    return active_model_key()


def query_vector_build(*, terms: tuple[QueryTerm, ...], model_id: str | None = None) -> QueryVector:
    """Encode, weight, sum and normalise ``terms`` (already validated by ``terms_validate``).

    Raises ``QueryError`` for an unknown/unindexed image id, an unreadable picture, a refused URL or terms that
    cancel out; ``ModelUnavailableError`` (503) when a term needs the model and it cannot load. A query of image
    ids only never loads the model. Side effect: fills the text LRU cache.
    """
    # Pictures are fetched and decoded first: a bad one is refused without loading the model.
    pictures = {p: _picture(t) for p, t in enumerate(terms) if t.kind in ("image", "url")}
    model_key = query_model_key(model_id=model_id)
    encoder = _encoder(model_id) if any(t.kind in ("text", "image", "url") for t in terms) else None
    if encoder is not None and model_id is None and encoder.model_key != model_key:
        model_key = encoder.model_key
    notices: list[str] = []
    vectors: list[np.ndarray | None] = [None] * len(terms)
    _text_vectors(terms, encoder, model_key, vectors, notices)
    if pictures:
        assert encoder is not None
        encoded = on_inference_thread(encoder.encode_images, list(pictures.values()))
        for position, vector in zip(pictures, encoded, strict=True):
            vectors[position] = np.asarray(vector, dtype=np.float32)
    _stored_vectors(terms, model_key, vectors)
    for position, term in enumerate(terms):
        if term.kind == "vector":
            if term.model_key != model_key or term.vector is None:
                raise QueryError("The picture you searched with was encoded by another model; add it again.")
            vectors[position] = np.asarray(term.vector, dtype=np.float32)
    total = np.zeros_like(next(v for v in vectors if v is not None), dtype=np.float32)
    for term, vector in zip(terms, vectors, strict=True):
        assert vector is not None
        total += np.float32(term.weight) * vector.astype(np.float32)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise QueryError("The terms cancel each other out; change a weight or add a term.")
    return QueryVector(vector=(total / norm).astype(np.float32), model_key=model_key, notices=notices)


def text_vectors_prefetch(*, terms: tuple[QueryTerm, ...], model_id: str | None = None) -> Callable[[], None]:
    """Start encoding the short text terms not cached yet on the inference thread, without waiting, and return
    a function that waits for them. They land in the text cache, so ``query_vector_build`` then finds them: a
    caller does other work meanwhile (hybrid search runs the keyword index while the model encodes). Any error
    is left for ``query_vector_build`` to raise (it encodes what is still missing)."""
    texts = list(dict.fromkeys(t.text for t in terms if t.kind == "text" and len(t.text) <= TEXT_CACHE_MAX_CHARS))
    encoder = loaded_encoder(model_id, None) if model_id else loaded_encoder(active_model().model_id,
                                                                              active_model().revision)  # fmt: skip
    if encoder is None or not texts:
        return lambda: None
    missing = [text for text in texts if (encoder.model_key, text) not in TEXT_VECTOR_CACHE]
    if not missing:
        return lambda: None
    done: Future[None] = Future()

    def encode() -> None:
        try:
            array, _ = encoder.encode_texts_detailed(missing)
            for text, vector in zip(missing, array, strict=True):
                vector = np.array(vector, dtype=np.float32)
                vector.setflags(write=False)
                TEXT_VECTOR_CACHE.put((encoder.model_key, text), vector)
        except Exception:  # query_vector_build encodes again and raises it properly
            pass
        finally:
            done.set_result(None)

    start_on_inference_thread(encode)
    return lambda: done.result()


def _encoder(model_id: str | None) -> Encoder:
    """The given model's encoder, else the active model's at the revision its embeddings were made with.
    Loaded on the inference thread (see ``search.embeddings.inference``)."""
    if model_id:
        source: tuple[str, str | None] = (model_id, None)
    else:
        active = active_model()
        source = (active.model_id, active.revision)
    # Once loaded, handing the lookup to the inference thread would only cost a thread switch.
    return loaded_encoder(*source) or on_inference_thread(get_encoder, *source)


def _text_vectors(
    terms: tuple[QueryTerm, ...], encoder: Any, model_key: str, out: list[np.ndarray | None], notices: list[str]
) -> None:
    missing: dict[str, list[int]] = {}
    for position, term in enumerate(terms):
        if term.kind != "text":
            continue
        cached = TEXT_VECTOR_CACHE.get((model_key, term.text)) if len(term.text) <= TEXT_CACHE_MAX_CHARS else None
        if cached is not None:
            out[position] = cached
        else:
            missing.setdefault(term.text, []).append(position)
    if not missing:
        return
    texts = list(missing)
    array, truncated = on_inference_thread(encoder.encode_texts_detailed, texts)
    for text, vector, cut in zip(texts, array, truncated, strict=True):
        vector = np.array(vector, dtype=np.float32)
        vector.setflags(write=False)
        for position in missing[text]:
            out[position] = vector
        if len(text) <= TEXT_CACHE_MAX_CHARS:
            TEXT_VECTOR_CACHE.put((model_key, text), vector)
        if cut:
            notices.append(f'"{text[:40]}" is longer than the model reads; only its beginning was used.')


def _picture(term: QueryTerm) -> Any:
    """A decoded picture for an image or URL term; refused or unreadable input becomes a ``QueryError``."""
    from images.services.decoding import ImageRejectedError, decode_image

    data = term.image
    if term.kind == "url":
        from django.conf import settings

        from images.services import FetchRejectedError, FetchTimeoutError, fetch_url_bounded

        try:
            data = fetch_url_bounded(term.url, timeout=settings.SEMSEARCH_QUERY_FETCH_TIMEOUT).data
        except FetchTimeoutError as exc:
            exc.message = f"The image at {term.url[:200]} could not be used: {exc.message}"
            raise
        except FetchRejectedError as exc:
            raise QueryError(f"The image at {term.url[:200]} could not be used: {exc}") from None
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            decoded = decode_image(bytes(data))
        except ImageRejectedError as exc:
            raise QueryError(f"The picture could not be read: {exc}") from None
        return getattr(decoded, "image", decoded)
    return data  # a PIL image or a local path, from the Python API


def _stored_vectors(terms: tuple[QueryTerm, ...], model_key: str, out: list[np.ndarray | None]) -> None:
    ids = [t.image_id for t in terms if t.kind == "image_id" and t.image_id is not None]
    if not ids:
        return
    found = stored_vectors(model_key=model_key, image_ids=ids)
    for position, term in enumerate(terms):
        if term.kind != "image_id" or term.image_id is None:
            continue
        vector = found.get(term.image_id)
        if vector is None:
            status = Image.objects.filter(pk=term.image_id).values_list("status", flat=True).first()
            if status is None:
                raise QueryError(f"image:{term.image_id} does not exist (it may have been deleted).")
            if status == ImageStatus.FAILED:
                raise QueryError(f"image:{term.image_id} could not be processed, so it cannot be searched with.")
            raise QueryError(f"image:{term.image_id} is not indexed yet; try again in a few seconds.")
        out[position] = np.asarray(vector, dtype=np.float32)

"""The process-wide encoder cache behind ``get_encoder`` and ``encoder_status``.

A cache, not a source of truth: one ``Encoder`` per (model id, revision), loaded lazily under a per-key lock so
concurrent first requests load it once. A failed load is remembered for ``FAILURE_TTL_SECONDS`` so a broken
configuration answers at once instead of retrying a slow load on every request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from search.embeddings.encoder import Encoder
from search.embeddings.errors import ModelUnavailableError
from search.embeddings.loading import model_key_for

FAILURE_TTL_SECONDS = 60.0


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    encoder: Encoder | None = None
    error: ModelUnavailableError | None = None
    failed_at: float = 0.0
    loading: bool = False


_slots: dict[tuple[str, str], _Slot] = {}
_slots_lock = threading.Lock()


def get_encoder(model_id: str | None = None, revision: str | None = None) -> Encoder:
    """The loaded, warmed-up encoder for ``model_id`` (default ``settings.SEMSEARCH_MODEL_ID``; ``toy`` is the
    bundled tiny CLIP) at ``revision`` (default ``settings.SEMSEARCH_MODEL_REVISION``). Loads on first use, once per
    process; thread-safe. Raises ``ModelUnavailableError`` (a 503 at the edge) when the model cannot be loaded."""
    model_id, revision = _defaults(model_id, revision)
    slot = _slot(model_id, revision)
    if slot.encoder is not None:
        return slot.encoder
    with slot.lock:
        if slot.encoder is not None:
            return slot.encoder
        if slot.error is not None and time.monotonic() - slot.failed_at < FAILURE_TTL_SECONDS:
            raise slot.error
        slot.loading = True
        try:
            slot.encoder = _load(model_id, revision)
            slot.error = None
        except ModelUnavailableError as error:
            slot.error, slot.failed_at = error, time.monotonic()
            raise
        except Exception as error:  # never a raw traceback to a user: every load failure is the domain error
            from search.embeddings.loading import unavailable

            slot.error, slot.failed_at = unavailable(model_id, type(error).__name__), time.monotonic()
            raise slot.error from error
        finally:
            slot.loading = False
        return slot.encoder


def loaded_encoder(model_id: str | None = None, revision: str | None = None) -> Encoder | None:
    """The encoder ``get_encoder`` would return if it is loaded already, else None (never loads, never blocks)."""
    model_id, revision = _defaults(model_id, revision)
    return _slot(model_id, revision).encoder


def encoder_status(model_id: str | None = None, revision: str | None = None) -> dict[str, object]:
    """``{model_id, model_key, loaded, error}`` (plus ``precision``, the ``PrecisionChoice`` summary, once loaded)
    for the configured (or given) model and revision (as ``get_encoder``). Never raises and never blocks:
    when the model has not been tried yet it starts loading it in a background thread and reports ``loaded=False``;
    a failure is reported (and retried in the background) at most every ``FAILURE_TTL_SECONDS``."""
    try:
        model_id, revision = _defaults(model_id, revision)
    except Exception as error:  # settings unreadable: still an answer, not an exception
        return {"model_id": model_id, "model_key": None, "loaded": False, "error": str(error)}
    try:
        key: str | None = model_key_for(model_id, revision or None)
        key_error = None
    except Exception as exc:
        key, key_error = None, getattr(exc, "message", str(exc))
    slot = _slot(model_id, revision)
    if slot.encoder is not None:
        return {"model_id": model_id, "model_key": slot.encoder.model_key, "loaded": True, "error": None,
                "precision": slot.encoder.precision_choice.summary()}  # fmt: skip
    recent_failure = slot.error is not None and time.monotonic() - slot.failed_at < FAILURE_TTL_SECONDS
    if not slot.loading and not recent_failure and key_error is None:
        _load_in_background(model_id, revision)
    reason = slot.error.message if slot.error is not None else key_error
    return {"model_id": model_id, "model_key": key, "loaded": False, "error": reason}


def clear_encoder_cache() -> None:
    """Forget every loaded encoder and remembered failure (tests and model switches)."""
    with _slots_lock:
        _slots.clear()


def _load(model_id: str, revision: str) -> Encoder:
    from django.conf import settings

    return Encoder.load(
        model_id,
        revision or None,
        device=settings.SEMSEARCH_DEVICE,
        precision=settings.SEMSEARCH_PRECISION,
        threads=settings.SEMSEARCH_TORCH_THREADS,
        batch_size=settings.SEMSEARCH_EMBED_BATCH_SIZE,
        choice_cache_dir=Path(settings.DATA_DIR) / "precision",
    )


def _load_in_background(model_id: str, revision: str) -> None:
    def run() -> None:
        with contextlib.suppress(ModelUnavailableError):  # remembered in the slot; encoder_status reports it
            get_encoder(model_id, revision)

    from search.embeddings.inference import start_on_inference_thread

    _slot(model_id, revision).loading = True
    start_on_inference_thread(run)  # where the queries that need it will run it


def _defaults(model_id: str | None, revision: str | None) -> tuple[str, str]:
    from django.conf import settings

    if model_id is None:
        model_id = settings.SEMSEARCH_MODEL_ID
        if revision is None:
            revision = settings.SEMSEARCH_MODEL_REVISION
    return str(model_id), str(revision or "")


def _slot(model_id: str, revision: str) -> _Slot:
    key = (model_id, revision)
    with _slots_lock:
        slot = _slots.get(key)
        if slot is None:
            slot = _slots[key] = _Slot()
        return slot

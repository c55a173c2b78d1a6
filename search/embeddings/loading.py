"""Finding, identifying and loading a CLIP-family model (hub id, local folder, or the bundled toy model).

Every failure becomes one ``ModelUnavailableError`` whose message names ``SEMSEARCH_MODEL_ID`` and the alternatives;
the traceback goes to the log, never to a user. Loading from the hub tries the local cache first and only goes online
when the hub answers a quick connection test, so an offline machine fails in seconds.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.embeddings.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

TOY_MODEL_ID = "toy"
_HUB_HOST = "huggingface.co"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_FULL_HASH_LIMIT = 64 * 1024 * 1024
_SAMPLE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSource:
    """Where a model id points: ``kind`` is ``toy``, ``local`` (a folder) or ``hub``; ``location`` is what
    ``from_pretrained`` receives."""

    model_id: str
    kind: str
    location: str


def toy_model_dir() -> Path:
    """The bundled tiny CLIP's folder (``settings.SEMSEARCH_TOY_MODEL_DIR``, or the repository default)."""
    try:
        from django.conf import settings

        return Path(settings.SEMSEARCH_TOY_MODEL_DIR)
    except Exception:  # settings not configured (a script outside Django): use the repository layout
        return Path(__file__).resolve().parents[2] / "models" / "tiny-clip"


def resolve_source(model_id: str) -> ModelSource:
    """Classify ``model_id``; the literal ``toy`` and the toy folder's path both mean the bundled toy model."""
    value = (model_id or "").strip()
    if not value:
        raise unavailable(model_id, "no model id is configured")
    toy = toy_model_dir()
    if value.lower() == TOY_MODEL_ID:
        return ModelSource(model_id=value, kind="toy", location=str(toy))
    path = Path(value).expanduser()
    looks_like_path = value.startswith(("/", "./", "../", "~")) or path.is_dir()
    if looks_like_path:
        if path.resolve() == toy.resolve():
            return ModelSource(model_id=value, kind="toy", location=str(toy))
        if not path.is_dir():
            raise unavailable(value, "that folder does not exist")
        return ModelSource(model_id=value, kind="local", location=str(path.resolve()))
    return ModelSource(model_id=value, kind="hub", location=value)


def model_key_for(model_id: str, revision: str | None) -> str:
    """The key stored with every embedding: the hub id (plus ``@revision`` when one is pinned); for a folder its name
    plus a short hash of its weights (``toy-clip@<hash>`` for the bundled model), so a retrain changes the key.
    Raises ``ModelUnavailableError`` when a folder has no weights to hash."""
    source = resolve_source(model_id)
    if source.kind == "hub":
        return f"{source.location}@{revision}" if revision else source.location
    digest = weights_digest(Path(source.location))[:12]
    if source.kind == "toy":
        return f"toy-clip@{digest}"
    return f"local:{Path(source.location).name}@{digest}"


def weights_digest(folder: Path) -> str:
    """sha256 over the folder's weight files (sampled for files over 64 MB); cached per file size and mtime."""
    files = (
        sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
        if folder.is_dir()
        else []
    )
    if not files:
        raise unavailable(str(folder), "the folder holds no model weights")
    total = hashlib.sha256()
    for path in files:
        stat = path.stat()
        total.update(path.name.encode())
        total.update(_file_digest(str(path), stat.st_size, stat.st_mtime_ns).encode())
    return total.hexdigest()


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(handle.read(_SAMPLE_BYTES))
            handle.seek(size - _SAMPLE_BYTES)
            digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def unavailable(model_id: str | None, reason: str) -> ModelUnavailableError:
    """The one error users see when a model cannot be loaded."""
    return ModelUnavailableError(
        f"The embedding model {model_id!r} cannot be loaded ({reason}); set SEMSEARCH_MODEL_ID to a Hugging Face "
        f"model id that is cached or reachable, to a local model folder, or to 'toy' for the bundled toy model."
    )


def load_components(source: ModelSource, revision: str | None) -> tuple[Any, Any, Any]:
    """(model in fp32 on the CPU, tokenizer, image processor) for ``source``; raises ``ModelUnavailableError``."""
    # Short network timeouts: an unreachable hub must fail within seconds, not minutes of retries.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    if source.kind != "hub":
        if not (Path(source.location) / "config.json").is_file():
            raise unavailable(source.model_id, f"{source.location} has no config.json")
        return _load(source, revision, local_only=True)
    try:
        return _load(source, revision, local_only=True, log_failure=False)
    except ModelUnavailableError as cached_error:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or not hub_reachable():
            logger.warning("embedding model %r is not cached and the hub is unreachable", source.model_id)
            raise unavailable(
                source.model_id, "it is not in the local Hugging Face cache and the hub cannot be reached"
            ) from cached_error
    return _load(source, revision, local_only=False)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hugging Face hub opens within ``timeout`` seconds (or a proxy is set)."""
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    try:
        with socket.create_connection((_HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


# transformers resolves its names lazily, and two threads doing that at once can fail with "cannot import name"
# (a background load started by encoder_status beside a request loading another model); one at a time.
_TRANSFORMERS_IMPORT_LOCK = threading.Lock()


def _load(
    source: ModelSource, revision: str | None, *, local_only: bool, log_failure: bool = True
) -> tuple[Any, Any, Any]:
    with _TRANSFORMERS_IMPORT_LOCK:
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kwargs: dict[str, Any] = {"local_files_only": local_only}
    if revision:
        kwargs["revision"] = revision
    try:
        model = AutoModel.from_pretrained(source.location, dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
        image_processor = AutoImageProcessor.from_pretrained(source.location, **kwargs)
    except Exception as error:  # transformers raises OSError, ValueError, KeyError, safetensors and json errors
        if log_failure:
            logger.warning("loading embedding model %r failed", source.model_id, exc_info=True)
        raise unavailable(source.model_id, _reason(error)) from error
    if not (hasattr(model, "get_text_features") and hasattr(model, "get_image_features")):
        raise unavailable(source.model_id, f"{type(model).__name__} is not a CLIP-family text-image model")
    return model, tokenizer, image_processor


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    first = text.split(". ")[0]
    return first if len(first) <= 160 else first[:157] + "..."

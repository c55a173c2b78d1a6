"""``SEMSEARCH_PRECISION=auto`` on a CPU: the precision is chosen by measurement when a model loads.

Every candidate precision (fp32, dynamic int8, bf16 stored weights — bf16 only where a matrix product runs faster
in it than in fp32, i.e. not emulated) encodes a fixed set of pictures and texts; a candidate is kept when its
vectors stay within cosine ``MIN_COSINE`` of fp32's. Among those kept, the fastest image batch (throughput) sets
the image tower's precision and the fastest single text query (latency) the text tower's; they may differ. The
choice is cached per model key and machine (CPU model, flags, torch version, threads) in a JSON file, so only the
first load on a machine pays for it (a second or two for ViT-B/32); a new model or machine measures afresh.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from search.embeddings import precision as precision_mod

logger = logging.getLogger(__name__)

CANDIDATES = ("fp32", "int8", "bf16")
MIN_COSINE = 0.99
IMAGE_BATCH = 4
TEXT_REPEATS = 5
TEXTS = ("a dog running on the beach", "a red car parked in the snow", "two people hiking", "a bowl of soup")
SCHEMA = 1  # bump when the measurement changes, so cached choices made the old way are measured again


class Measurable(Protocol):
    """What the measurement needs of an encoder (``Encoder`` provides it)."""

    def pictures_prepare(self, pictures: list[Any]) -> np.ndarray: ...

    def pixels_encode(self, pixels: np.ndarray) -> np.ndarray: ...

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class PrecisionChoice:
    """Precision per tower, how it was decided (``setting``, ``measured``, ``cached``) and the measurements."""

    image: str
    text: str
    source: str
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What ``/api/v1/status`` reports."""
        return {"image": self.image, "text": self.text, "source": self.source, "measured": self.measured}


def machine_fingerprint(device: str) -> str:
    """CPU model, CPU flags, torch version and threads: a cached choice holds only where all of these match."""
    import torch

    cpu = precision_mod.cpu_model()
    flags = " ".join(sorted(precision_mod.cpu_flags()))
    return f"{cpu}|{hashlib.sha256(flags.encode()).hexdigest()[:16]}|torch {torch.__version__}|" \
           f"threads {torch.get_num_threads()}|{device}|schema {SCHEMA}"  # fmt: skip


def precision_choose(
    *, model_key: str, device: str, build: Callable[[str], Measurable], cache_dir: Path | None
) -> PrecisionChoice:
    """The measured choice for ``model_key`` on this machine: read from ``cache_dir`` when measured before, else
    measured with ``build(precision)`` (a fresh encoder in that precision) and written there. Processes sharing
    ``cache_dir`` measure one at a time, so they agree."""
    fingerprint = machine_fingerprint(device)
    if cache_dir is None:
        return _measure(build)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{hashlib.sha256(f'{model_key}|{fingerprint}'.encode()).hexdigest()[:24]}.json"
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = _read(path, model_key=model_key, fingerprint=fingerprint)
        if cached is not None:
            return cached
        choice = _measure(build)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        record = {"model_key": model_key, "machine": fingerprint, **asdict(choice), "source": "cached"}
        partial.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(partial, path)
    return choice


def _read(path: Path, *, model_key: str, fingerprint: str) -> PrecisionChoice | None:
    try:
        record = json.loads(path.read_text())
        if record["model_key"] != model_key or record["machine"] != fingerprint:
            return None
        return PrecisionChoice(image=record["image"], text=record["text"], source="cached", measured=record["measured"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: measure again


def _measure(build: Callable[[str], Measurable]) -> PrecisionChoice:
    started = time.perf_counter()
    reference = build("fp32")
    pixels = reference.pictures_prepare(_pictures())
    expected_images, expected_texts = reference.pixels_encode(pixels), reference.encode_texts(list(TEXTS))
    measured: dict[str, dict[str, Any]] = {}
    for name in CANDIDATES:
        if name == "bf16":
            speedup = precision_mod.bf16_matmul_speedup()
            if speedup < 1.0:
                measured[name] = {"kept": False, "reason": f"bf16 matrix products run at {speedup:.2f}x fp32 here"}
                continue
        encoder = reference if name == "fp32" else build(name)
        images, texts = encoder.pixels_encode(pixels), encoder.encode_texts(list(TEXTS))
        cosine = min(float((images * expected_images).sum(1).min()), float((texts * expected_texts).sum(1).min()))
        seconds = _best_seconds(functools.partial(encoder.pixels_encode, pixels))
        text_seconds = _median_seconds(functools.partial(encoder.encode_texts, [TEXTS[0]]))
        row: dict[str, Any] = {"kept": cosine >= MIN_COSINE, "min_cosine": round(cosine, 5),
                               "images_per_s": round(IMAGE_BATCH / seconds, 2),
                               "text_ms": round(1000 * text_seconds, 3)}  # fmt: skip
        if not row["kept"]:
            row["reason"] = f"cosine {cosine:.4f} to fp32 is under {MIN_COSINE}"
        measured[name] = row
        del encoder
    kept = [name for name, row in measured.items() if row["kept"]]
    image = max(kept, key=lambda name: measured[name]["images_per_s"])
    text = min(kept, key=lambda name: measured[name]["text_ms"])
    logger.info("precision chosen by measurement in %.1f s: images %s, text %s (%s)", time.perf_counter() - started,
                image, text, measured)  # fmt: skip
    return PrecisionChoice(image=image, text=text, source="measured", measured=measured)


def _pictures() -> list[Any]:
    from search.embeddings.toy_data import photo_like_picture

    return [photo_like_picture(256, 192, seed=seed) for seed in range(IMAGE_BATCH)]


def _best_seconds(work: Callable[[], Any], repeats: int = 2) -> float:
    work()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return max(best, 1e-9)


def _median_seconds(work: Callable[[], Any]) -> float:
    work()
    timings = []
    for _ in range(TEXT_REPEATS):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return float(statistics.median(timings))

"""Numeric precision of the forward pass: what the CPU supports and how each choice is applied.

``SEMSEARCH_PRECISION`` takes ``fp32``, ``bf16``, ``int8``, ``fp16`` (CUDA only) or ``auto``. ``auto`` picks, at run
time: ``fp16`` on CUDA; ``bf16`` autocast on CPUs with native bf16 matrix support (AVX-512 BF16 or AMX), where it
keeps cosine >= 0.99999 to fp32 and runs ~3x faster; otherwise dynamic ``int8`` quantisation of the Linear layers,
which on an AVX2-only CPU ran ViT-B/32 images ~1.4x and short text queries ~2.6x faster than fp32 with cosine
>= 0.9996 to fp32 and unchanged toy-model recall@5 (bf16 without hardware support is ~6x *slower* than fp32).
docs/embeddings.md has the measurements; ``fp32`` is always available as the exact reference.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "int8", "fp16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True where bf16 matrix multiplication runs in hardware (AVX-512 BF16 or AMX tiles)."""
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def resolve_precision(requested: str, device: str) -> str:
    """The concrete precision for ``requested`` on ``device``; raises ``ValueError`` for an unknown value."""
    value = (requested or "auto").strip().lower()
    if value not in PRECISIONS:
        raise ValueError(f"SEMSEARCH_PRECISION must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if value == "auto":
        if device.startswith("cuda"):
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "int8"
    if value == "fp16" and not device.startswith("cuda"):
        return "fp32"  # fp16 matmuls are emulated (slow) on CPUs; never worth it there
    if value == "int8" and device.startswith("cuda"):
        return "fp16"  # dynamic quantisation is a CPU technique
    return value


def prepare_model(model: Any, precision: str, device: str) -> Any:
    """Move ``model`` to ``device`` and apply ``precision``'s weight transformation; returns the model to run."""
    import torch

    model = model.to(device).eval()
    if precision == "fp16":
        model = model.half()
    elif precision == "int8":
        import warnings

        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it is deprecated; 2.13 ships it
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


@contextlib.contextmanager
def forward_context(precision: str, device: str) -> Iterator[None]:
    """``inference_mode`` plus autocast where ``precision`` needs it."""
    import torch

    with torch.inference_mode():
        if precision == "bf16":
            with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16):
                yield
        else:
            yield


def input_dtype(precision: str) -> torch.dtype:
    """The dtype pixel tensors must have for ``precision``."""
    import torch

    return torch.float16 if precision == "fp16" else torch.float32

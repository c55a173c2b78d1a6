"""Numeric precision of the forward pass: what the CPU supports and how each choice is applied.

``SEMSEARCH_PRECISION`` takes ``fp32``, ``bf16``, ``int8``, ``fp16`` (CUDA only) or ``auto``. ``auto`` means ``fp16``
on CUDA; on a CPU it is decided by measurement when the model loads (``search.embeddings.autotune``: every
precision that keeps cosine >= 0.99 to fp32 is timed, separately for image batches and single text queries), and
``resolve_precision`` gives the flag-based default where nothing is measured (bf16 where the CPU has native bf16
matrix support, int8 elsewhere). ``prepare_model`` applies a precision per tower: dynamic ``int8`` quantisation
of the Linear layers, or ``bf16`` stored weights (cast once, LayerNorms kept in fp32; not autocast, which re-cast
the weights on every call). docs/embeddings.md has the measurements; ``fp32`` is always the exact reference.
"""

from __future__ import annotations

import contextlib
import functools
import platform
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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor name where that file does not exist)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


# The submodules of each tower in Hugging Face CLIP-family models (SigLIP has no separate projections).
IMAGE_PARTS = ("vision_model", "visual_projection")
TEXT_PARTS = ("text_model", "text_projection")


def prepare_model(model: Any, precision: str, device: str, text_precision: str | None = None) -> Any:
    """Move ``model`` to ``device`` and apply ``precision`` to its image tower and ``text_precision`` (default: the
    same) to its text tower; returns the model to run. A model without the usual towers gets ``precision`` whole."""
    import torch

    model = model.to(device).eval()
    if precision == "fp16":
        return model.half()
    image_parts = [name for name in IMAGE_PARTS if hasattr(model, name)]
    text_parts = [name for name in TEXT_PARTS if hasattr(model, name)]
    if not image_parts and not text_parts:
        by_part: dict[str, str] = {"": precision}
    else:
        by_part = {name: precision for name in image_parts}
        by_part.update({name: text_precision or precision for name in text_parts})
    quantised = [name for name, value in by_part.items() if value == "int8"]
    if quantised:
        import warnings

        qconfig = torch.ao.quantization.default_dynamic_qconfig
        # Only the Linear layers of the chosen towers (a qconfig on a tower would reach its Embedding layers too).
        linears = [name for name, layer in model.named_modules() if isinstance(layer, torch.nn.Linear)
                   and any(name == part or name.startswith(f"{part}.") for part in quantised)]  # fmt: skip
        spec: Any = {torch.nn.Linear} if quantised == [""] else dict.fromkeys(linears, qconfig)
        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it is deprecated; 2.13 ships it
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
    for name, value in by_part.items():
        if value == "bf16":
            _bf16_weights(model.get_submodule(name) if name else model)
    return model


def _bf16_weights(module: Any) -> None:
    """Store ``module``'s weights in bf16, keeping its LayerNorms in fp32 (their inputs cast up, outputs back)."""
    import torch

    module.to(torch.bfloat16)
    for layer in module.modules():
        if isinstance(layer, torch.nn.LayerNorm):
            layer.float()
            layer.register_forward_pre_hook(lambda _m, args: (args[0].float(), *args[1:]))
            layer.register_forward_hook(lambda _m, _args, out: out.to(torch.bfloat16))


@contextlib.contextmanager
def forward_context(precision: str, device: str) -> Iterator[None]:
    """The context every forward pass runs in (``inference_mode``; precisions are applied to the weights)."""
    import torch

    with torch.inference_mode():
        yield


def input_dtype(precision: str) -> torch.dtype:
    """The dtype pixel tensors must have for ``precision``."""
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)


def bf16_matmul_speedup(repeats: int = 5) -> float:
    """How many times faster a ViT-sized matrix product runs in bf16 than in fp32 here (< 1 where bf16 is
    emulated): a few milliseconds, enough to rule bf16 out before timing the model in it."""
    import time

    import torch

    a32, b32 = torch.randn(256, 768), torch.randn(768, 768)
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = a32.to(dtype), b32.to(dtype)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - started)
        timings[dtype] = best
    return timings[torch.float32] / max(timings[torch.bfloat16], 1e-9)

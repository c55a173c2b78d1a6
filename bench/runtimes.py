"""Candidate CPU runtimes and JPEG decoders for the image tower, measured beside PyTorch (used by bench/embed.py).

* ONNX Runtime (fp32, and int8 from its own dynamic quantisation) and OpenVINO (fp32), each exported from the
  in-memory Hugging Face model with no network; skipped with a reason when the package is not installed
  (``pip install onnxruntime onnx openvino``; none of them is a project dependency unless adopted).
* JPEG decoding to about the model's input size: Pillow's draft mode (scales 1/2, 1/4, 1/8) against libjpeg-turbo's
  finer scales through ``simplejpeg`` (if installed), with the cosine of the resulting vectors to the model's own
  processor on the fully decoded picture.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _rate(run: Callable[[], Any], batch: int, seconds: float) -> float:
    run()
    runs, started = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - started < seconds:
        run()
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def _unit(array: Any) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def runtime_rates(model: Any, *, batch: int, threads: int, quick: bool) -> dict[str, dict[str, Any]]:
    """images/s and min cosine to PyTorch fp32 of the image tower in each other runtime (or why it was skipped)."""
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, pixel_values: Any) -> Any:
            out = self.clip.get_image_features(pixel_values=pixel_values)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    tower = ImageTower(model).eval()
    pixels = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32))
    with torch.inference_mode():
        reference = _unit(tower(pixels).numpy())
    seconds = 1.0 if quick else 6.0
    results: dict[str, dict[str, Any]] = {}
    folder = Path(tempfile.mkdtemp(prefix="semsearch-runtimes-"))

    def record(name: str, run: Callable[[], Any]) -> None:
        vectors = _unit(run())
        results[name] = {"images_per_s": round(_rate(run, batch, seconds), 2),
                         "min_cosine": round(float((vectors * reference).sum(1).min()), 6)}  # fmt: skip

    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fp32 = folder / "image.onnx"
        torch.onnx.export(tower, (pixels,), str(fp32), input_names=["pixel_values"], output_names=["embeds"],
                          dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17, dynamo=False)  # fmt: skip
        int8 = folder / "image-int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        for name, path in (("onnxruntime_fp32", fp32), ("onnxruntime_int8", int8)):
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {"pixel_values": pixels.numpy()}
            record(name, lambda session=session, feed=feed: session.run(None, feed)[0])
    except ImportError as error:
        results["onnxruntime"] = {"skipped": f"not installed ({error.name})"}
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(ov.convert_model(tower, example_input=pixels), "CPU",
                                           {"INFERENCE_NUM_THREADS": threads})  # fmt: skip
        array = pixels.numpy()
        record("openvino_fp32", lambda: compiled(array)[0])
    except ImportError as error:
        results["openvino"] = {"skipped": f"not installed ({error.name})"}
    return results


def decoder_rates(encoder: Any, processor: Any, files: dict[str, list[bytes]]) -> dict[str, dict[str, Any]]:
    """Per size: ms to decode a JPEG to about the model's input, Pillow draft vs simplejpeg, and each decode's min
    cosine to the model's own processor on the fully decoded picture (through the shipped encoder)."""
    from PIL import Image

    spec = encoder.image_spec
    side = min(spec.output_size) if spec is not None else 224
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None

    def pillow(data: bytes) -> Any:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (side, side))
        return image.convert("RGB")

    def turbo(data: bytes) -> Any:
        return Image.fromarray(simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=side, min_width=side))

    decoders = {"pillow_draft": pillow, **({"simplejpeg": turbo} if simplejpeg is not None else {})}
    out: dict[str, dict[str, Any]] = {}
    for label in ("1024x768", "4000x3000"):
        data = files[label][:8]
        full = [Image.open(io.BytesIO(d)).convert("RGB") for d in data]
        pixels = processor(images=full, return_tensors="np")["pixel_values"].astype(np.float32)
        reference = encoder.pixels_encode(pixels)
        row: dict[str, Any] = {}
        for name, decode in decoders.items():
            started = time.process_time()
            decoded = [decode(d) for d in data]
            ms = 1000 * (time.process_time() - started) / len(data)
            vectors = encoder.encode_images(decoded)
            row[name] = {"decode_ms": round(ms, 2), "decoded_size": list(decoded[0].size),
                         "min_cosine": round(float((vectors * reference).sum(1).min()), 5)}  # fmt: skip
        if simplejpeg is None:
            row["simplejpeg"] = {"skipped": "not installed"}
        out[label] = row
    return out

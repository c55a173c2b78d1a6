"""Decode-once options for ingestion, measured: CPU per picture on the way in (upload + worker) and how close each
option's vectors stay to those of decoding the original (the model's own Hugging Face processor on the fully
decoded original), with the random-weight ViT-B/32 at the shipped precision.

Options:

* ``current``: the upload decodes (JPEG draft to ≥ 768 px) for the thumbnail; the worker decodes the original again
  (JPEG draft to ≥ 2× the model input) for the model.
* ``thumbnail``: the worker's model input comes from the stored WebP thumbnail (384 px, quality 82): no second
  decode of the original.
* ``prepared``: the upload also writes the model input (resize + centre crop of its decode) as a lossless PNG, and
  the worker reads that.
* ``thumbnail_lean``: ``thumbnail`` decoding at ≥ 384 px, WebP method 0.
* ``thumbnail_jpeg``: ``thumbnail_lean`` with a JPEG (quality 85) thumbnail instead of WebP.
* ``thumbnail_jpeg_bilinear``: the same, reduced with a bilinear filter instead of Lanczos.
* ``thumbnail_turbo``: the shipped upload (``images.services.decoding.decode_image`` + ``thumbnail_render``): JPEGs
  decode through libjpeg-turbo (simplejpeg) at the smallest n/8 scale covering the thumbnail (a 1024×768 photo at
  3/8 = 384×288, which needs no resize), the rest as ``thumbnail_jpeg_bilinear``; the worker reads the thumbnail.
* ``worker_once``: the upload only validates (JPEG draft to 1/8 scale, which still reads every byte); the worker
  decodes once (draft to ≥ 768 px) and makes both the thumbnail and the model input from it.

    .venv/bin/python bench/decode_once.py [--pictures 24] [--out PATH]

Prints a table; with ``--out`` writes JSON with ``targets``: each option's minimum cosine ≥ 0.999.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")
os.environ.setdefault("SEMSEARCH_DATA_DIR", tempfile.mkdtemp(prefix="semsearch-bench-decode-"))
os.environ.pop("DATABASE_URL", None)

from semsearch_site.bootstrap import data_dir_prepare  # noqa: E402

data_dir_prepare()
import django  # noqa: E402

django.setup()

from bench.embed import build_vit_b32, jpeg_files, machine  # noqa: E402
from images.services.decoding import decode_image  # noqa: E402
from images.services.storage import thumbnail_render  # noqa: E402

THUMB = 384
JPEG_QUALITY = 85


def _timed(work: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - started)
    return best, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", type=int, default=24, help="pictures per size (default 24)")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    args = parser.parse_args()
    import torch
    from PIL import Image

    from search.embeddings import precision as precision_mod
    from search.embeddings.preprocess import load_rgb, pixels_into, spec_from_processor

    model, _tokenizer, processor = build_vit_b32()
    precision = precision_mod.resolve_precision("auto", "cpu")
    model = precision_mod.prepare_model(model, precision, "cpu")
    spec = spec_from_processor(processor.image_processor)
    assert spec is not None
    height, width = spec.output_size

    def decode(data: bytes, side: int, *, validate_only: bool = False) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (image.width // 8, image.height // 8) if validate_only else (side, side))
        image.load()
        return image.convert("RGB")

    def thumbnail(image: Image.Image, method: int = 2, *, jpeg: bool = False,
                  resample: Image.Resampling = Image.Resampling.LANCZOS) -> bytes:  # fmt: skip
        thumb = image.copy()
        thumb.thumbnail((THUMB, THUMB), resample, reducing_gap=3.0)
        buffer = io.BytesIO()
        if jpeg:
            thumb.save(buffer, "JPEG", quality=JPEG_QUALITY)
        else:
            thumb.save(buffer, "WEBP", quality=82, method=method)
        return buffer.getvalue()

    def lean(data: bytes) -> bytes:  # decode at ≥ the thumbnail's size, WebP method 0
        return thumbnail(decode(data, THUMB), method=0)

    def jpeg_thumb(data: bytes) -> bytes:  # decode at ≥ the thumbnail's size, JPEG
        return thumbnail(decode(data, THUMB), jpeg=True)

    def jpeg_fast(data: bytes) -> bytes:  # the same with a bilinear (still antialiased) reduction
        return thumbnail(decode(data, THUMB), jpeg=True, resample=Image.Resampling.BILINEAR)

    def turbo(data: bytes) -> bytes:  # the shipped upload
        return thumbnail_render(image=decode_image(data, max_side=THUMB).image)

    def model_input(image: Image.Image) -> Image.Image:
        return load_rgb(image, spec)

    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()

    options: dict[str, dict[str, Callable[[bytes], Any]]] = {
        "current": {"upload": lambda d: thumbnail(decode(d, 2 * THUMB)), "worker": lambda d: load_rgb(d, spec)},
        "thumbnail": {"upload": lambda d: thumbnail(decode(d, 2 * THUMB)),
                      "worker": lambda d: model_input(Image.open(io.BytesIO(thumbnail(decode(d, 2 * THUMB)))))},
        "prepared": {"upload": lambda d: (lambda im: (thumbnail(im), png(model_input(im))))(decode(d, 2 * THUMB)),
                     "worker": lambda d: Image.open(io.BytesIO(png(model_input(decode(d, 2 * THUMB))))).convert("RGB")},
        "thumbnail_lean": {"upload": lean, "worker": lambda d: model_input(Image.open(io.BytesIO(lean(d))))},
        "thumbnail_jpeg": {"upload": jpeg_thumb,
                           "worker": lambda d: model_input(Image.open(io.BytesIO(jpeg_thumb(d))))},
        "thumbnail_jpeg_bilinear": {"upload": jpeg_fast,
                                    "worker": lambda d: model_input(Image.open(io.BytesIO(jpeg_fast(d))))},
        "thumbnail_turbo": {"upload": turbo, "worker": lambda d: model_input(Image.open(io.BytesIO(turbo(d))))},
        "worker_once": {"upload": lambda d: decode(d, 0, validate_only=True),
                        "worker": lambda d: (lambda im: (thumbnail(im), model_input(im))[1])(decode(d, 2 * THUMB))},
    }  # fmt: skip
    # What the worker reads for each option is prepared outside the timing where the upload made it.
    worker_reads: dict[str, Callable[[bytes], Any]] = {
        "current": lambda d: d,
        "thumbnail": lambda d: thumbnail(decode(d, 2 * THUMB)),
        "prepared": lambda d: png(model_input(decode(d, 2 * THUMB))),
        "thumbnail_lean": lean,
        "thumbnail_jpeg": jpeg_thumb,
        "thumbnail_jpeg_bilinear": jpeg_fast,
        "thumbnail_turbo": turbo,
        "worker_once": lambda d: d,
    }
    worker_timed: dict[str, Callable[[Any], Any]] = {
        "current": lambda blob: load_rgb(blob, spec),
        "thumbnail": lambda blob: model_input(Image.open(io.BytesIO(blob))),
        "prepared": lambda blob: Image.open(io.BytesIO(blob)).convert("RGB"),
        "thumbnail_lean": lambda blob: model_input(Image.open(io.BytesIO(blob))),
        "thumbnail_jpeg": lambda blob: model_input(Image.open(io.BytesIO(blob))),
        "thumbnail_jpeg_bilinear": lambda blob: model_input(Image.open(io.BytesIO(blob))),
        "thumbnail_turbo": lambda blob: model_input(Image.open(io.BytesIO(blob))),
        "worker_once": options["worker_once"]["worker"],
    }

    def vectors(images: list[Image.Image]) -> np.ndarray:
        pixels = np.empty((len(images), 3, height, width), dtype=np.float32)
        for i, image in enumerate(images):
            pixels_into(pixels[i], image, spec)
        with precision_mod.forward_context(precision, "cpu"), torch.no_grad():
            out = model.get_image_features(pixel_values=torch.from_numpy(pixels))
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out.float(), dim=-1).numpy()

    result: dict[str, Any] = {"machine": machine(torch), "precision": precision, "pictures_per_size": args.pictures}
    targets: dict[str, Any] = {}
    for size in ((1024, 768), (4000, 3000)):
        label = f"{size[0]}x{size[1]}"
        files = jpeg_files(size, args.pictures)
        reference = []
        for data in files:  # the model's own processor on the fully decoded original
            pixels = processor.image_processor(images=[Image.open(io.BytesIO(data)).convert("RGB")],
                                               return_tensors="np")["pixel_values"]  # fmt: skip
            reference.append(pixels[0])
        with precision_mod.forward_context(precision, "cpu"), torch.no_grad():
            ref = model.get_image_features(pixel_values=torch.from_numpy(np.stack(reference)))
        ref = torch.nn.functional.normalize((ref if isinstance(ref, torch.Tensor) else ref.pooler_output).float(),
                                            dim=-1).numpy()  # fmt: skip
        for name, option in options.items():
            upload_s, _ = _timed(lambda option=option, files=files: [option["upload"](d) for d in files])
            blobs = [worker_reads[name](d) for d in files]
            worker_s, images = _timed(lambda name=name, blobs=blobs: [worker_timed[name](b) for b in blobs])
            cosine = (vectors(images) * ref).sum(axis=1)
            per = 1000 / len(files)
            row = {"upload_ms": round(upload_s * per, 2), "worker_ms": round(worker_s * per, 2),
                   "cosine_min": round(float(cosine.min()), 5),
                   "cosine_mean": round(float(cosine.mean()), 5)}  # fmt: skip
            row["total_ms"] = round(row["upload_ms"] + row["worker_ms"], 2)
            result.setdefault(name, {})[label] = row
            targets[f"cosine_min_{name}_{label}"] = {"value": row["cosine_min"], "target": 0.999, "op": ">="}
    result = {"targets": targets, **result}
    print(f"\n{'option':<24} {'size':<10} {'upload ms':>10} {'worker ms':>10} {'total ms':>9} {'cos min':>8}")
    for name in options:
        for label, row in result[name].items():
            print(f"{name:<24} {label:<10} {row['upload_ms']:>10.2f} {row['worker_ms']:>10.2f} {row['total_ms']:>9.2f} "
                  f"{row['cosine_min']:>8.5f}")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

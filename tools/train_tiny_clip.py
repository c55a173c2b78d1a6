"""Train the project's tiny CLIP on synthetic coloured-shape pictures and save it in Hugging Face format.

A toy for tests and the offline demo, not a real image model: it only knows the pictures drawn by
``search.embeddings.toy_data`` (shape kind, colour, count, background, position). It loads through the same
``CLIPModel.from_pretrained`` / ``AutoProcessor.from_pretrained`` path as any real CLIP.

    .venv/bin/python tools/train_tiny_clip.py   # 1000 steps of 256; ~17-26 min on a shared 2-core box

Needs ``pip install --no-deps open_clip_torch==3.3.0`` (for its vocabulary file only).

Deterministic for a given seed and thread count. Prints held-out recall@1/@5 for text->image and image->image.
The real CLIP BPE vocabulary is read as a plain file from open_clip_torch's wheel (installed with ``--no-deps``;
the package is never imported).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from search.embeddings.toy_data import (  # noqa: E402
    ShapeAttributes,
    caption_for,
    random_attributes,
    random_captioned_pictures,
    render_shape_picture,
)

IMAGE_SIZE = 64
PATCH_SIZE = 16
WIDTH = 128
LAYERS = 4
HEADS = 4
MAX_TEXT_TOKENS = 32
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def bpe_vocab_path() -> Path:
    """Locate ``bpe_simple_vocab_16e6.txt.gz`` inside the installed open_clip_torch without importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("open_clip_torch is needed for its BPE vocabulary: pip install --no-deps open_clip_torch")
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the open_clip_torch install")
    return path


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode mapping."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def build_tokenizer():
    """The original OpenAI CLIP tokenizer (49,408 tokens), built from the BPE merges file."""
    from transformers import CLIPTokenizer

    with gzip.open(bpe_vocab_path(), "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab.extend("".join(m) for m in merges)
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    tokenizer = CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=merges,
        model_max_length=MAX_TEXT_TOKENS,
    )
    assert len(tokenizer) == 49408, len(tokenizer)
    return tokenizer


def build_model(tokenizer):
    import torch
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": WIDTH,
            "intermediate_size": WIDTH * 4,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "max_position_embeddings": MAX_TEXT_TOKENS,
            "projection_dim": WIDTH,
            # EOS pooling: the text vector is read at the first <|endoftext|>, which must not be id 2.
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": WIDTH,
            "intermediate_size": WIDTH * 4,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "projection_dim": WIDTH,
        },
        projection_dim=WIDTH,
    )
    torch.manual_seed(0)
    return CLIPModel(config)


def build_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=CLIP_MEAN.tolist(),
        image_std=CLIP_STD.tolist(),
        resample=3,  # bicubic, as OpenAI CLIP
    )


def to_pixels(batch_uint8: np.ndarray):
    """(n, h, w, 3) uint8 -> normalised (n, 3, h, w) float32 tensor, as the CLIP image processor does."""
    import torch

    x = (batch_uint8.astype(np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def render_pool(n: int, seed: int) -> tuple[np.ndarray, list[ShapeAttributes]]:
    """``n`` training pictures at model resolution. One in five is drawn large and resized the processor's way,
    so the model also sees pictures that went through a bicubic downscale (like the demo's 224 px pictures)."""
    from PIL import Image

    rng = random.Random(seed)
    pixels = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    attributes = []
    for i in range(n):
        attrs = random_attributes(rng)
        if rng.random() < 0.2:
            big = render_shape_picture(**attrs.as_dict(), size=rng.choice((96, 128, 224)), seed=rng.getrandbits(32))
            picture = big.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
        else:
            picture = render_shape_picture(**attrs.as_dict(), size=IMAGE_SIZE, seed=rng.getrandbits(32))
        pixels[i] = np.asarray(picture)
        attributes.append(attrs)
    return pixels, attributes


def recall_at(similarity: np.ndarray, query_attrs: list, gallery_attrs: list, ks=(1, 5)) -> dict[int, float]:
    """Share of queries whose top-k gallery items include one with exactly the query's attributes."""
    order = np.argsort(-similarity, axis=1)
    gallery = np.array([hash(a) for a in gallery_attrs])
    queries = np.array([hash(a) for a in query_attrs])
    hits = gallery[order] == queries[:, None]
    return {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}


def evaluate(model, tokenizer, n: int, seed: int) -> dict[str, float]:
    """Held-out recall: fresh renders and captions (seed unseen in training)."""
    import torch

    model.eval()
    samples = random_captioned_pictures(n, seed, size=IMAGE_SIZE)
    rng = random.Random(seed + 1)
    # The image->image gallery: a different render of the same attributes for every query picture.
    gallery = [render_shape_picture(**a.as_dict(), size=IMAGE_SIZE, seed=rng.getrandbits(32)) for _, _, a in samples]
    attrs = [a for _, _, a in samples]
    with torch.inference_mode():
        images = _encode_images(model, np.stack([np.asarray(p) for p, _, _ in samples]))
        gallery_vecs = _encode_images(model, np.stack([np.asarray(p) for p in gallery]))
        tokens = tokenizer([c for _, c, _ in samples], padding=True, truncation=True, return_tensors="pt")
        texts = model.get_text_features(**tokens).pooler_output
        texts = torch.nn.functional.normalize(texts, dim=-1).numpy()
    model.train()
    t2i = recall_at(texts @ images.T, attrs, attrs)
    i2i = recall_at(images @ gallery_vecs.T, attrs, attrs)
    return {"t2i@1": t2i[1], "t2i@5": t2i[5], "i2i@1": i2i[1], "i2i@5": i2i[5]}


def _encode_images(model, pixels: np.ndarray) -> np.ndarray:
    import torch

    out = [
        model.get_image_features(pixel_values=to_pixels(pixels[i : i + 256])).pooler_output
        for i in range(0, len(pixels), 256)
    ]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1).numpy()


def train(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)
    started = time.monotonic()
    pool, pool_attrs = render_pool(args.pool, args.seed)
    print(f"rendered {args.pool} training pictures in {time.monotonic() - started:.0f} s", flush=True)
    attr_ids = np.array([hash(a) for a in pool_attrs])

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = min(100, args.steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

    rng = np.random.default_rng(args.seed)
    caption_rng = random.Random(args.seed)
    model.train()
    started = time.monotonic()
    for step in range(args.steps):
        index = rng.choice(len(pool), size=args.batch, replace=False)
        pixels = to_pixels(pool[index])
        captions = [caption_for(pool_attrs[i], caption_rng) for i in index]
        tokens = tokenizer(captions, padding=True, truncation=True, return_tensors="pt")
        image_vecs = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        text_vecs = torch.nn.functional.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * text_vecs @ image_vecs.T
        # Pictures with identical attributes are equally right answers: soft targets, not a false negative.
        same = torch.from_numpy(attr_ids[index][:, None] == attr_ids[index][None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
        loss = 0.5 * (
            -(targets * logits.log_softmax(dim=1)).sum(1).mean() - (targets * logits.T.log_softmax(dim=1)).sum(1).mean()
        )
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        if step % 50 == 0 or step == args.steps - 1:
            elapsed = time.monotonic() - started
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {lr_at(step):.2e}  {elapsed:6.0f} s", flush=True)
        if args.eval_every and step and step % args.eval_every == 0:
            print(f"  held-out (256): {evaluate(model, tokenizer, 256, args.seed + 10_000)}", flush=True)

    metrics = evaluate(model, tokenizer, args.eval_size, args.seed + 20_000)
    print(
        f"held-out recall over {args.eval_size} pictures: "
        f"text->image @1 {metrics['t2i@1']:.3f} @5 {metrics['t2i@5']:.3f} | "
        f"image->image @1 {metrics['i2i@1']:.3f} @5 {metrics['i2i@5']:.3f}",
        flush=True,
    )
    save(model, tokenizer, Path(args.out), metrics, args)


def save(model, tokenizer, out: Path, metrics: dict[str, float], args: argparse.Namespace) -> None:
    """Write model (fp16 safetensors), tokenizer and image processor into ``out`` via a temporary folder."""
    import shutil

    import torch
    from transformers import CLIPModel, CLIPProcessor

    processor = CLIPProcessor(image_processor=build_image_processor(), tokenizer=tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staging = Path(tmp) / "model"
        model.to(torch.float16).save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / "training.json").write_text(
            json.dumps(
                {"script": "tools/train_tiny_clip.py", "args": _portable(vars(args)), "held_out_recall": metrics},
                indent=2,
            )
            + "\n"
        )
        CLIPModel.from_pretrained(staging)  # fail here, not in the test suite, if the folder does not load
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staging), str(out))
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f"saved to {out} ({size:.1f} MB)", flush=True)


def _portable(args: dict) -> dict:
    """The arguments with paths inside the repository made relative, so the record is the same on every machine."""
    out = dict(args)
    path = Path(out["out"]).resolve()
    if path.is_relative_to(REPO_ROOT):
        out["out"] = str(path.relative_to(REPO_ROOT))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "models" / "tiny-clip"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pool", type=int, default=40_000, help="pre-rendered training pictures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-size", type=int, default=1000)
    train(parser.parse_args(argv))


if __name__ == "__main__":
    main()

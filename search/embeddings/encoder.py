"""The ``Encoder``: one loaded CLIP-family model turning texts and images into L2-normalised float32 vectors.

Construct one with ``Encoder.load`` (or, inside Django, ``search.embeddings.get_encoder``, which caches one per
process). Methods are thread-safe: PyTorch forward passes hold no Python-side state.
"""

from __future__ import annotations

import collections
import copy
import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.embeddings import precision as precision_mod
from search.embeddings.autotune import PrecisionChoice, precision_choose
from search.embeddings.core_share import CoreShare
from search.embeddings.errors import ImageDecodeError, ModelUnavailableError
from search.embeddings.loading import load_components, model_key_for, resolve_source, unavailable
from search.embeddings.preprocess import ImageInput, ImageSpec, load_rgb, pixels_into, spec_from_processor
from search.embeddings.resampling import bicubic_resize

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Models whose text tower pools the last position (SigLIP) were trained on max-length padded text; CLIP pools the
# EOS token behind a causal mask, so padding after it changes nothing and can be dropped.
_PAD_TO_MAX_MODEL_TYPES = ("siglip", "siglip2")
_TEXT_BATCH = 64


class Encoder:
    """A loaded model. Attributes: ``model_id``, ``model_key``, ``dimension``, ``max_text_tokens``, ``device``,
    ``precision`` (the image tower's), ``text_precision``, ``precision_choice`` (how they were decided),
    ``batch_size``."""

    def __init__(
        self,
        *,
        model_id: str,
        model_key: str,
        model: Any,
        tokenizer: Any,
        image_processor: Any,
        device: str,
        precision: str,
        batch_size: int,
        text_precision: str | None = None,
        precision_choice: PrecisionChoice | None = None,
    ) -> None:
        self.model_id = model_id
        self.model_key = model_key
        self.device = device
        self.precision = precision
        self.text_precision = text_precision or precision
        self.precision_choice = precision_choice or PrecisionChoice(precision, self.text_precision, "setting")
        self.batch_size = max(1, int(batch_size))
        self._model = model
        self._tokenizer = tokenizer
        self._image_processor = image_processor
        self._spec: ImageSpec | None = spec_from_processor(image_processor)
        self._core_share: CoreShare | None = None
        config = model.config
        text_config = getattr(config, "text_config", config)
        self._pad_to_max = getattr(config, "model_type", "") in _PAD_TO_MAX_MODEL_TYPES
        limits = [int(getattr(text_config, "max_position_embeddings", 0) or 0)]
        tokenizer_limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
        if 0 < tokenizer_limit < 100_000:
            limits.append(tokenizer_limit)
        self.max_text_tokens = min(v for v in limits if v > 0)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.dimension = int(self.encode_texts(["a photo"]).shape[1])  # also warms the text tower up

    @property
    def model(self) -> Any:
        """The underlying Hugging Face model (after precision changes)."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def image_processor(self) -> Any:
        """The model's own Hugging Face image processor (the reference the fast path reproduces)."""
        return self._image_processor

    @property
    def image_spec(self) -> ImageSpec | None:
        """The fast preprocessing parameters, or None where the processor itself is used."""
        return self._spec

    @classmethod
    def load(
        cls,
        model_id: str,
        revision: str | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        threads: int = 0,
        batch_size: int = 16,
        choice_cache_dir: Path | None = None,
    ) -> Encoder:
        """Load ``model_id`` (hub id, local folder or ``toy``), apply ``precision`` on ``device`` and warm it up.

        ``auto`` on a CPU measures the candidate precisions (``search.embeddings.autotune``), caching the choice
        in ``choice_cache_dir`` when given. Raises ``ModelUnavailableError`` with a one-sentence message on any
        failure."""
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        numpy_blas_single_threaded()
        source = resolve_source(model_id)
        resolved_device = _resolve_device(device, model_id)
        try:
            resolved_precision = precision_mod.resolve_precision(precision, resolved_device)
        except ValueError as error:
            raise unavailable(model_id, str(error)) from error
        model, tokenizer, image_processor = load_components(source, revision)
        model_key = model_key_for(model_id, revision)

        def build(image: str, text: str | None = None, choice: PrecisionChoice | None = None,
                  weights: Any = None) -> Encoder:  # fmt: skip
            prepared = precision_mod.prepare_model(
                weights if weights is not None else copy.deepcopy(model), image, resolved_device, text_precision=text
            )
            return cls(model_id=model_id, model_key=model_key, model=prepared, tokenizer=tokenizer,
                       image_processor=image_processor, device=resolved_device, precision=image,
                       batch_size=batch_size, text_precision=text, precision_choice=choice)  # fmt: skip

        choice = None
        if (precision or "auto").strip().lower() == "auto" and resolved_device == "cpu":
            choice = precision_choose(model_key=model_key, device=resolved_device, build=build,
                                      cache_dir=choice_cache_dir)  # fmt: skip
            encoder = build(choice.image, choice.text, choice, weights=model)
        else:
            encoder = build(resolved_precision, weights=model)
        encoder.encode_images([_warmup_picture()])
        logger.info(
            "embedding model %s loaded on %s (images %s, text %s, %s; dim %d)",
            encoder.model_key,
            encoder.device,
            encoder.precision,
            encoder.text_precision,
            encoder.precision_choice.source,
            encoder.dimension,
        )
        return encoder

    # ----------------------------------------------------------------------------------------------- texts

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32 L2-normalised text vectors; text beyond ``max_text_tokens`` tokens is cut off."""
        return self.encode_texts_detailed(texts)[0]

    def encode_texts_detailed(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Like ``encode_texts``, plus, for each text, whether it was truncated to fit the model."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32), []
        full = self._tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        truncated = [len(ids) > self.max_text_tokens for ids in full]
        if self._pad_to_max:
            return self._encode_padded_to_max(texts), truncated
        ids = list(full)
        if any(truncated):
            cut = [i for i, flag in enumerate(truncated) if flag]
            shortened = self._tokenizer([texts[i] for i in cut], truncation=True, max_length=self.max_text_tokens)
            for i, row in zip(cut, shortened["input_ids"], strict=True):
                ids[i] = row
        # Sort by length so each batch is (nearly) pad-free; padding after EOS cannot change a causal EOS read-out.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), _TEXT_BATCH):
            chunk = order[start : start + _TEXT_BATCH]
            vectors = self._text_forward([ids[i] for i in chunk])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chunk] = vectors
        assert out is not None
        return out, truncated

    def _text_forward(self, rows: list[list[int]]) -> np.ndarray:
        import torch

        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention[i, : len(row)] = 1
        with precision_mod.forward_context(self.text_precision, self.device):
            output = self._model.get_text_features(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)
            )
            return _normalised(output)

    def _encode_padded_to_max(self, texts: list[str]) -> np.ndarray:
        tokens = self._tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
        )
        with precision_mod.forward_context(self.text_precision, self.device):
            output = self._model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
            return _normalised(output)

    # ---------------------------------------------------------------------------------------------- images

    def encode_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """(n, d) float32 L2-normalised image vectors for PIL images, encoded bytes or file paths.
        Raises ``ImageDecodeError`` naming the first item that cannot be read."""
        images = list(images)
        out = np.empty((len(images), self.dimension), dtype=np.float32)
        for ids, vectors, errors in self.encode_image_batches(enumerate(images)):
            if errors:
                index, message = errors[0]
                raise ImageDecodeError(f"Image #{index} cannot be read: {message}")
            out[ids] = vectors
        return out

    def encode_image_batches(
        self, items: Iterable[tuple[int, ImageInput]], batch_size: int | None = None, *, share_cores: bool = False
    ) -> Iterator[tuple[list[int], np.ndarray, list[tuple[int, str]]]]:
        """Encode ``(id, image)`` pairs batch by batch, yielding ``(ids, vectors, errors)``: the ids encoded, their
        (len(ids), d) vectors, and ``(id, message)`` for items that could not be decoded (they never break a batch).

        ``items`` is consumed in the caller's thread (a queryset iterator keeps its database connection); decoding
        and preprocessing of the next batches run on background threads while the model works on this one.
        With ``share_cores`` (batch embedding in a worker), each batch leaves alone the cores other processes are
        busy on (``search.embeddings.core_share``); the thread count is restored at the end. Closing the generator
        early cancels the background work."""
        import torch

        given = torch.get_num_threads()
        share = None
        if share_cores and self.device == "cpu":  # one tracker per encoder: its window spans the calls
            if self._core_share is None or self._core_share.given != given:
                self._core_share = CoreShare(given=given)
            share = self._core_share
        size = max(1, int(batch_size or self.batch_size))
        source = iter(items)
        workers = _decode_workers()
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed-decode")
        in_flight: collections.deque[Future] = collections.deque()

        def submit_next() -> None:
            chunk = list(itertools.islice(source, size))
            if chunk:
                in_flight.append(executor.submit(self._prepare, chunk))

        try:
            for _ in range(workers + 1):  # keep the decoders one batch ahead of the model
                submit_next()
            while in_flight:
                ids, pixels, errors = in_flight.popleft().result()
                submit_next()
                if share is not None and (threads := share.threads()) != torch.get_num_threads():
                    torch.set_num_threads(threads)
                vectors = self._image_forward(pixels) if ids else np.zeros((0, self.dimension), np.float32)
                yield ids, vectors, errors
        finally:
            if torch.get_num_threads() != given:
                torch.set_num_threads(given)
            for future in in_flight:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, chunk: list[tuple[int, ImageInput]]) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
        if self._spec is None:
            return self._prepare_with_processor(chunk)
        height, width = self._spec.output_size
        pixels = np.empty((len(chunk), 3, height, width), dtype=np.float32)
        ids: list[int] = []
        errors: list[tuple[int, str]] = []
        for item_id, item in chunk:
            try:
                pixels_into(pixels[len(ids)], load_rgb(item, self._spec, resize=bicubic_resize), self._spec)
            except Exception as error:  # a corrupt or unsupported file must not stop the batch
                errors.append((item_id, _describe(error)))
                continue
            ids.append(item_id)
        return ids, pixels[: len(ids)], errors

    def _prepare_with_processor(
        self, chunk: list[tuple[int, ImageInput]]
    ) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
        from search.embeddings.preprocess import open_image

        ids, arrays, errors = [], [], []
        for item_id, item in chunk:
            try:
                image = open_image(item)
                image.load()
                arrays.append(self._image_processor(images=[image], return_tensors="np")["pixel_values"][0])
            except Exception as error:
                errors.append((item_id, _describe(error)))
                continue
            ids.append(item_id)
        pixels = np.stack(arrays).astype(np.float32) if arrays else np.zeros((0, 3, 1, 1), np.float32)
        return ids, pixels, errors

    def pictures_prepare(self, pictures: Sequence[ImageInput]) -> np.ndarray:
        """The model's input pixels for these pictures, (n, 3, h, w) float32. Raises ``ImageDecodeError``."""
        _ids, pixels, errors = self._prepare(list(enumerate(pictures)))
        if errors:
            raise ImageDecodeError(f"Image #{errors[0][0]} cannot be read: {errors[0][1]}")
        return pixels

    def pixels_encode(self, pixels: np.ndarray) -> np.ndarray:
        """(n, d) float32 L2-normalised vectors of prepared pixels (``pictures_prepare``): the forward pass alone."""
        return self._image_forward(pixels)

    def _image_forward(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        tensor = torch.from_numpy(pixels).to(self.device, precision_mod.input_dtype(self.precision))
        with precision_mod.forward_context(self.precision, self.device):
            return _normalised(self._model.get_image_features(pixel_values=tensor))

    def __repr__(self) -> str:
        return f"<Encoder {self.model_key} dim={self.dimension} {self.device}/{self.precision}>"


def _normalised(output: Any) -> np.ndarray:
    import torch

    tensor: torch.Tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    tensor = torch.nn.functional.normalize(tensor.float(), dim=-1)
    return tensor.cpu().numpy().astype(np.float32, copy=False)


def _resolve_device(device: str, model_id: str) -> str:
    import torch

    value = (device or "auto").strip().lower()
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailableError(
            f"SEMSEARCH_DEVICE is {device!r} but no CUDA device is available; set SEMSEARCH_DEVICE=cpu or auto "
            f"to run {model_id!r} on the CPU."
        )
    if value != "cpu" and not value.startswith("cuda"):
        raise ModelUnavailableError(f"SEMSEARCH_DEVICE must be auto, cpu or cuda[:n], not {device!r}.")
    return value


def numpy_blas_single_threaded() -> None:
    """Keep numpy's own OpenBLAS (its pthreads build) to one thread in a process that runs the model.

    After each matrix product its threads spin for a while, waiting for more, on the cores torch's team is using:
    one small product per batch (the automatic tags' scores) cut a 2-core worker from 74 to 59 images/s on
    ViT-B/32 (bf16). The model's products run in torch and Faiss has its own OpenMP build of OpenBLAS; neither is
    touched. Idempotent."""
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(threading_layer="pthreads").limit(limits=1)


def _decode_workers() -> int:
    """Decoding threads: one on small machines (the model needs the cores), up to four on large ones."""
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def _describe(error: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not a recognised image file"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _warmup_picture() -> Any:
    from PIL import Image

    return Image.new("RGB", (32, 32), (128, 128, 128))

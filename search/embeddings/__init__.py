"""The embedding engine: any Hugging Face CLIP-family model (CLIP, SigLIP) as L2-normalised float32 vectors.

Public interface (importing this package does not import torch or transformers):

- ``get_encoder(model_id=None, revision=None) -> Encoder``: the process-wide, lazily loaded encoder.
- ``loaded_encoder(model_id=None, revision=None) -> Encoder | None``: that encoder if already loaded (never loads).
- ``encoder_status(model_id=None) -> dict``: ``model_id``, ``model_key``, ``loaded``, ``error``; never raises.
- ``model_key_for(model_id, revision) -> str``: the key stored with every embedding.
- ``on_inference_thread(fn, *args)``: run model work for queries on the process's one inference thread.
- ``Encoder``: ``encode_texts``, ``encode_texts_detailed``, ``encode_images``, ``encode_image_batches``.
- ``ModelUnavailableError``, ``ImageDecodeError``.

See docs/embeddings.md.
"""

from search.embeddings.encoder import Encoder
from search.embeddings.errors import ImageDecodeError, ModelUnavailableError
from search.embeddings.inference import on_inference_thread
from search.embeddings.loading import TOY_MODEL_ID, model_key_for
from search.embeddings.registry import clear_encoder_cache, encoder_status, get_encoder, loaded_encoder

__all__ = [
    "TOY_MODEL_ID",
    "Encoder",
    "ImageDecodeError",
    "ModelUnavailableError",
    "clear_encoder_cache",
    "encoder_status",
    "get_encoder",
    "loaded_encoder",
    "model_key_for",
    "on_inference_thread",
]

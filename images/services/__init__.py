"""Ingestion services: every way an image arrives (admin, REST, CSV of URLs, folders) goes through these.

Public names:

- ``image_ingest(*, data, filename, source_url, source_link, title, attribution, tags, uploader) -> IngestResult``
- ``image_prepare`` / ``image_record``: the two halves of ``image_ingest`` (files, then the row), for importers;
  ``images_record`` records many prepared images in one lookup and one insert
- ``images_reembed(*, image_ids, model_key=None)``, ``image_delete(*, image)``, ``image_embedding_enqueue``
- ``decode_image(data) -> DecodedImage`` and ``ImageRejectedError``
- ``fetch_url(url, *, max_bytes, timeout) -> FetchedFile`` and ``FetchRejectedError``; ``fetch_url_bounded`` (a
  bounded number in flight per process: ``FetchBusyError``, ``FetchTimeoutError``)
"""

from .decoding import DecodedImage, ImageRejectedError, decode_image
from .fetching import FetchBusyError, FetchedFile, FetchRejectedError, FetchTimeoutError, fetch_url, fetch_url_bounded
from .ingest import (
    IngestResult,
    PreparedImage,
    filename_clean,
    image_delete,
    image_embedding_enqueue,
    image_ingest,
    image_prepare,
    image_record,
    images_record,
    images_reembed,
    tags_clean,
)

__all__ = [
    "DecodedImage",
    "FetchBusyError",
    "FetchRejectedError",
    "FetchTimeoutError",
    "FetchedFile",
    "ImageRejectedError",
    "IngestResult",
    "PreparedImage",
    "decode_image",
    "fetch_url",
    "fetch_url_bounded",
    "filename_clean",
    "image_delete",
    "image_embedding_enqueue",
    "image_ingest",
    "image_prepare",
    "image_record",
    "images_record",
    "images_reembed",
    "tags_clean",
]

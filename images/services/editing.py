"""Editing an image's words: title, attribution, description, tags and source link (admin and REST)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from images.models import Image

from .ingest import tags_clean

EDITABLE = ("title", "attribution", "description", "tags", "source_link")


def image_update(*, image: Image, changes: dict[str, Any]) -> Image:
    """Apply ``changes`` (a subset of ``EDITABLE``; tags cleaned as on upload) and save them in one transaction;
    the keyword index follows in the same transaction (database triggers). Idempotent. Returns the image."""
    fields = [name for name in EDITABLE if name in changes]
    for name in fields:
        value = changes[name]
        if name == "tags":
            value = tags_clean(value)
        elif name == "description":  # paragraphs are kept; other fields are single lines
            value = str(value).strip()
        else:
            value = " ".join(str(value).split())
        setattr(image, name, value)
    if fields:
        with transaction.atomic():
            image.save(update_fields=[*fields, "updated_at"])
    return image

"""Read-side queries over the catalogue: the filtered list behind the REST API and the admin, and single lookups."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Count, Q, QuerySet

from core.errors import NotFoundError
from images.enrichment_filters import autotag_match_q, picture_text_filter
from images.models import Image, ImageStatus


def image_list(
    *,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    tags: Sequence[str] = (),
    uploader: str | int | None = None,
    format: str | None = None,
    status: str | None = None,
    min_width: int | None = None,
    min_height: int | None = None,
    text: str = "",
) -> QuerySet[Image]:
    """Images matching every given filter, newest first. ``tags``: all must be present (case-insensitive);
    ``uploader``: a user id or username; ``format``: JPEG, PNG, WebP, ... (case-insensitive); ``text``: read from
    the picture (``picture_text_filter``). Automatic tags that nobody rejected count as tags."""
    queryset = Image.objects.select_related("uploader")
    if created_after is not None:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    for tag in tags:
        queryset = queryset.filter(_tag_q(tag))
    if uploader not in (None, ""):
        who = str(uploader)
        queryset = queryset.filter(Q(uploader__username=who) | (Q(uploader_id=int(who)) if who.isdigit() else Q()))
    if format:
        queryset = queryset.filter(format__iexact=format)
    if status:
        queryset = queryset.filter(status=status)
    if min_width:
        queryset = queryset.filter(width__gte=min_width)
    if min_height:
        queryset = queryset.filter(height__gte=min_height)
    if text:
        queryset = picture_text_filter(queryset=queryset, text=text)
    return queryset.order_by("-created_at", "-id")


def _tag_q(tag: str) -> Q:
    tag = " ".join(tag.split()).lower()
    if connection.features.supports_json_field_contains:
        return Q(tags__contains=[tag]) | autotag_match_q(tag=tag)
    # SQLite has no JSON containment: match the quoted tag inside the stored JSON text (tags are normalised).
    return Q(tags__icontains=json.dumps(tag)) | autotag_match_q(tag=tag)


def image_get(image_id: int) -> Image:
    """The image with this id, or ``NotFoundError``."""
    image = Image.objects.select_related("uploader").filter(pk=image_id).first()
    if image is None:
        raise NotFoundError(f"There is no image {image_id}.")
    return image


def image_status_counts() -> dict[str, int]:
    """Images per status (every status present) plus ``total``."""
    counts = dict.fromkeys(ImageStatus.values, 0)
    for row in Image.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[value] for value in ImageStatus.values)
    return counts


def image_source_urls() -> set[str]:
    """Every recorded source URL (what a CSV import skips on a re-run)."""
    return set(Image.objects.exclude(source_url="").values_list("source_url", flat=True))


def images_for_ocr(*, force: bool = False) -> list[int]:
    """Ids of ready images that have no text read yet (with ``force``: every ready image), oldest first."""
    queryset = Image.objects.filter(status=ImageStatus.READY)
    if not force:
        queryset = queryset.filter(picture_text__isnull=True)
    return list(queryset.order_by("id").values_list("id", flat=True))

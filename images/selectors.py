"""Read-side queries over the catalogue: the filtered list behind the REST API and the admin, and single lookups."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from core.errors import NotFoundError
from images.filters import NO_FILTERS, CatalogueFilters, image_filter
from images.models import Image, ImageStatus


def image_list(*, filters: CatalogueFilters = NO_FILTERS, status: str | None = None) -> QuerySet[Image]:
    """Images matching ``filters`` (see ``images.filters``) and ``status``, newest first."""
    queryset = image_filter(queryset=Image.objects.select_related("uploader"), filters=filters)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


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

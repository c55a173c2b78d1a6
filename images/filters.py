"""The catalogue filters, defined once: tags, uploader, format, minimum size, date bounds and text in the picture.

The image list (REST), the search API, the web UI and ``SemanticSearcher`` all build a ``CatalogueFilters`` with
``catalogue_filters`` and apply it with ``image_filter``, so a filter means the same thing everywhere:

* ``tags``: every listed tag, normalised exactly as stored tags are (``tag_normalise``), so ``Demo`` finds ``demo``;
  an automatic tag that nobody rejected counts too (``images.enrichment_filters.autotag_match_q``).
* ``text``: text read from the picture, a substring, or whole words when "quoted" (``picture_text_filter``).
* ``uploader``: a username, or a user id when the value is all digits (either matches).
* ``formats``: any of these, named case-insensitively (``jpeg``, ``JPEG``); an unknown name is refused.
* ``min_width`` / ``min_height``: at least this many pixels.
* ``created_after`` inclusive, ``created_before`` exclusive; a bare date covers its whole day on both bounds
  (``created_after=2025-01-01&created_before=2025-01-31`` is all of January).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.errors import DomainError
from images.enrichment_filters import autotag_match_q, picture_text_filter
from images.formats import FORMAT_NAMES, FORMATS

MAX_TAG_LENGTH = 64


class FilterError(DomainError):
    """A filter value that means nothing (an unknown format, a bound that is not a date)."""

    code = "invalid_filter"


@dataclass(frozen=True)
class CatalogueFilters:
    """Normalised restrictions on which catalogue images match; build it with ``catalogue_filters``."""

    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    tags: tuple[str, ...] = ()  # normalised; an image must carry every one
    uploader: str = ""  # username, or a user id when all digits
    formats: tuple[str, ...] = ()  # canonical names (JPEG, PNG, WebP, ...), any of
    min_width: int | None = None
    min_height: int | None = None
    text: str = ""  # read from the picture (OCR): substring, or whole words when "quoted"

    @property
    def is_empty(self) -> bool:
        return not (self.created_after or self.created_before or self.tags or self.uploader or self.formats
                    or self.min_width or self.min_height or self.text)  # fmt: skip


NO_FILTERS = CatalogueFilters()


def tag_normalise(tag: str) -> str:
    """A tag as it is stored and matched: whitespace collapsed, lower case, at most 64 characters. Pure."""
    return " ".join(str(tag).split()).lower()[:MAX_TAG_LENGTH]


def formats_normalise(values: Iterable[str] | str) -> tuple[str, ...]:
    """Canonical format names for ``values`` (case-insensitive, comma-separated strings allowed), or
    ``FilterError`` naming an unknown one and the accepted names. Pure."""
    canonical = {name.lower(): name for name in FORMAT_NAMES}
    canonical.update({suffix.lstrip("."): fmt.name for fmt in FORMATS for suffix in fmt.suffixes})  # jpg, tif, ...
    out = []
    for value in _split(values):
        name = canonical.get(value.lower())
        if name is None:
            raise FilterError(f"Unknown format {value[:40]!r}; accepted: {', '.join(FORMAT_NAMES)}.")
        out.append(name)
    return tuple(dict.fromkeys(out))


def catalogue_filters(
    *,
    tags: Iterable[str] | str = (),
    uploader: str | int | None = None,
    formats: Iterable[str] | str = (),
    min_width: int | None = None,
    min_height: int | None = None,
    created_after: date | datetime | None = None,
    created_before: date | datetime | None = None,
    text: str = "",
) -> CatalogueFilters:
    """Normalised filters from user values (strings or lists for ``tags`` and ``formats``; a ``date`` bound is a
    whole day). Raises ``FilterError`` for an unknown format. Pure."""
    return CatalogueFilters(
        created_after=_moment(created_after, next_day=False),
        created_before=_moment(created_before, next_day=True),
        tags=tuple(dict.fromkeys(t for t in (tag_normalise(v) for v in _split(tags)) if t)),
        uploader=str(uploader).strip() if uploader not in (None, "") else "",
        formats=formats_normalise(formats),
        min_width=min_width or None,
        min_height=min_height or None,
        text=" ".join((text or "").split())[:200],
    )


def catalogue_filters_from(*, params: Mapping[str, Any]) -> CatalogueFilters:
    """``catalogue_filters`` from request parameters (``format``, or its former name ``image_format``). Pure."""
    return catalogue_filters(
        tags=params.get("tags") or (),
        uploader=params.get("uploader"),
        formats=[*_split(params.get("format")), *_split(params.get("image_format"))],
        min_width=params.get("min_width"),
        min_height=params.get("min_height"),
        created_after=params.get("created_after"),
        created_before=params.get("created_before"),
        text=params.get("text") or "",
    )


def image_filter(*, queryset: QuerySet, filters: CatalogueFilters) -> QuerySet:
    """``queryset`` (of ``Image``) narrowed to the images matching every filter. Lazy; no query runs here."""
    if filters.created_after is not None:
        queryset = queryset.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        queryset = queryset.filter(created_at__lt=filters.created_before)
    if filters.uploader:
        by_id = Q(uploader_id=int(filters.uploader)) if filters.uploader.isdigit() else Q()
        queryset = queryset.filter(Q(uploader__username=filters.uploader) | by_id)
    if filters.formats:  # stored as users see them; matched without case in case older rows differ
        any_format = Q()
        for name in filters.formats:
            any_format |= Q(format__iexact=name)
        queryset = queryset.filter(any_format)
    if filters.min_width:
        queryset = queryset.filter(width__gte=filters.min_width)
    if filters.min_height:
        queryset = queryset.filter(height__gte=filters.min_height)
    for tag in filters.tags:
        queryset = _with_tag(queryset, tag)
    if filters.text:
        queryset = picture_text_filter(queryset=queryset, text=filters.text)
    return queryset


def _with_tag(queryset: QuerySet, tag: str) -> QuerySet:
    automatic = autotag_match_q(tag=tag)
    if connection.features.supports_json_field_contains:
        return queryset.filter(Q(tags__contains=[tag]) | automatic)
    # SQLite has no JSON containment lookup; json_each walks the stored list instead.
    table = queryset.model._meta.db_table
    sql = f'SELECT "{table}"."id" FROM "{table}", json_each("{table}"."tags") WHERE json_each.value = %s'
    return queryset.filter(Q(id__in=RawSQL(sql, [tag])) | automatic)


def _split(values: Iterable[str] | str | None) -> list[str]:
    if not values:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def bound_parse(value: str) -> date | datetime:
    """A date bound from text: ``YYYY-MM-DD`` (a whole day) or an ISO 8601 time, else ``FilterError``. Pure."""
    text = value.strip()
    try:
        if "T" in text or " " in text:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 time.") from None


def _moment(value: date | datetime | str | None, *, next_day: bool) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = bound_parse(value)
    if not isinstance(value, datetime):
        value = datetime.combine(value + timedelta(days=1) if next_day else value, time.min)
    return timezone.make_aware(value) if timezone.is_naive(value) else value

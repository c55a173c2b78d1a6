"""Catalogue filters over enrichment: text read from the picture, and automatic tags counting as tags.

Two small functions, called by the image list (``images.selectors``) and by search (``search.services.
search_filters``), so both narrow by text and match automatic tags the same way.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from images.models import AutoTag, AutoTagState, Image, PictureText, PictureTextStatus


def picture_text_filter(*, queryset: QuerySet[Image], text: str) -> QuerySet[Image]:
    """Images whose picture text contains ``text``, case-insensitively, ignoring punctuation: a substring of a word
    (``exi`` finds ``EXIT``) or of several (``fire exit``). Wrapped in double quotes (``"exit"``), whole words only.
    Blank ``text`` returns ``queryset`` unchanged. Lazy."""
    quoted = len(text) > 1 and text.startswith('"') and text.endswith('"')
    words = " ".join("".join(ch for ch in token if ch.isalnum()) for token in text.lower().split())
    if not words.strip():
        return queryset
    needle = f" {words} " if quoted else words
    matching = PictureText.objects.filter(status=PictureTextStatus.DONE, words__contains=needle)
    return queryset.filter(id__in=matching.values("image_id"))


def autotag_match_q(*, tag: str) -> Q:
    """Images carrying ``tag`` as a proposed or accepted automatic tag (never a rejected one); OR it with the
    people's-tags condition. ``tag`` is compared lower-cased and single-spaced, as tags are stored."""
    name = " ".join(tag.split()).lower()
    tagged = AutoTag.objects.filter(tag=name).exclude(state=AutoTagState.REJECTED)
    return Q(id__in=tagged.values("image_id"))

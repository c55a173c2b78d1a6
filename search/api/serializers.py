"""Small input/output serializers for the search endpoints. Validation only; no logic."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from django.urls import get_script_prefix, get_urlconf, reverse
from rest_framework import serializers

from images.api.serializers import CatalogueFilterSerializer, StrictParamsMixin
from images.keyword_query import FIELD_COLUMNS
from images.models import Image
from images.services.storage import media_url_maker
from search.query import MAX_LIMIT, MAX_TERMS, MAX_WINDOW, SearchHit, SearchPage
from search.query.types import MODES


class SearchParamsSerializer(CatalogueFilterSerializer):
    """Filters (the catalogue's, ``images.filters``) and options shared by every search endpoint."""

    min_score = serializers.FloatField(required=False, allow_null=True, min_value=-1, max_value=1)
    relative_margin = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=2, help_text="Keep hits within this of the best score"
    )
    sort = serializers.ChoiceField(choices=["score", "date"], required=False, default="score")
    mode = serializers.ChoiceField(
        choices=list(MODES), required=False, default="hybrid",
        help_text="hybrid (default): the semantic and the keyword ranking fused; semantic: CLIP only; keyword: "
        "the text index only (title, tags, file name, attribution, description, picture text, accepted automatic "
        "tags)",
    )  # fmt: skip
    collapse = serializers.BooleanField(required=False, default=False, help_text="Fold near-duplicate hits")
    collapse_threshold = serializers.FloatField(required=False, allow_null=True, min_value=0.5, max_value=1)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_WINDOW - 1)
    limit = serializers.IntegerField(required=False, default=24, min_value=1, max_value=MAX_LIMIT)


class SearchGetSerializer(SearchParamsSerializer):
    q = serializers.CharField(required=True, allow_blank=False, trim_whitespace=True, help_text="Query syntax")


@cache
def _shared(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    serializer = serializer_class()
    serializer.fields  # noqa: B018  (binds the fields now, once: DRF deep-copies them for every new instance)
    return serializer


def params_validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``data`` validated by ``serializer_class`` exactly as ``is_valid(raise_exception=True)`` validates it (the
    same ``ValidationError``, so the same 400s), through one instance per class whose fields are built once per
    process: building them was most of the cost of validating a search GET. Thread-safe: ``run_validation``
    keeps no state on the instance."""
    return dict(_shared(serializer_class).run_validation(data))


class TermSerializer(StrictParamsMixin, serializers.Serializer):
    """One weighted term: exactly one of text, image_id or url; ``field`` with ``text`` makes it a field term."""

    text = serializers.CharField(required=False, max_length=300)
    image_id = serializers.IntegerField(required=False, min_value=1)
    url = serializers.URLField(required=False, max_length=2000)
    field = serializers.ChoiceField(
        choices=list(FIELD_COLUMNS), required=False,
        help_text="With text: a keyword field term (by: photographer, title:, tag:, file:, desc:, text:, auto:)",
    )  # fmt: skip
    weight = serializers.FloatField(required=False, default=1.0)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in ("text", "image_id", "url") if key in attrs]
        if len(given) != 1:
            raise serializers.ValidationError("Each term needs exactly one of text, image_id or url.")
        if "field" in attrs and "text" not in attrs:
            raise serializers.ValidationError('A field term needs text, as in {"field": "by", "text": "Ansel Adams"}.')
        return attrs


class SearchJsonSerializer(SearchParamsSerializer):
    q = serializers.CharField(required=False, allow_blank=True, help_text="Query syntax, added to the terms")
    terms: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=TermSerializer(), required=False, max_length=MAX_TERMS
    )


class SearchUploadSerializer(SearchParamsSerializer):
    q = serializers.CharField(required=False, allow_blank=True, help_text="Optional text combined with the image")
    image = serializers.FileField(help_text="The picture to search with")
    image_weight = serializers.FloatField(required=False, default=1.0, min_value=-10, max_value=10)


class ImageBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    format = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    attribution = serializers.CharField()
    source_link = serializers.CharField()
    source_url = serializers.CharField()
    uploader = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    thumbnail_url = serializers.CharField(allow_null=True)
    original_url = serializers.CharField(allow_null=True)
    page_url = serializers.CharField()
    similar_url = serializers.CharField()


class MatchSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="title, attribution, tags, filename, description, picture_text, autotags")
    # A declared field named "label": DRF's metaclass pops it from the class, so it never shadows ``Field.label``.
    label = serializers.CharField(help_text="The field's name for people")  # type: ignore[assignment]
    highlight = serializers.CharField(help_text="The field's text, HTML-escaped, matched words in <mark>")


class HitSerializer(serializers.Serializer):
    score = serializers.FloatField(
        help_text="The ranking score, higher is better: cosine similarity to the query in semantic mode, the fused "
        "score (0-1) in hybrid mode, keyword relevance (0-1) in keyword mode"
    )
    duplicates = serializers.IntegerField(help_text="Near-duplicates folded into this hit (when collapsing)")
    duplicate_ids = serializers.ListField(child=serializers.IntegerField())
    semantic_score = serializers.FloatField(
        allow_null=True, help_text="Cosine similarity to the query (null in keyword mode)"
    )
    keyword_score = serializers.FloatField(
        allow_null=True, help_text="Keyword relevance, 0-1 (null when the keyword side did not rank this hit)"
    )
    matched = MatchSerializer(many=True, help_text="Fields whose words matched the query")
    image = ImageBriefSerializer()


class SearchOutputSerializer(serializers.Serializer):
    results = HitSerializer(many=True)
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    has_more = serializers.BooleanField()
    next_offset = serializers.IntegerField(allow_null=True)
    best_score = serializers.FloatField(allow_null=True)
    model_key = serializers.CharField()
    notices = serializers.ListField(child=serializers.CharField())
    timings_ms = serializers.DictField(child=serializers.FloatField())
    mode = serializers.ChoiceField(choices=list(MODES), help_text="The mode that ranked the hits")


_PLACEHOLDER = 987654321


def _url_template(name: str) -> str:
    return reverse(name, args=[_PLACEHOLDER]).replace(str(_PLACEHOLDER), "{}")


@lru_cache(maxsize=16)
def _url_templates(prefix: str, urlconf: str | None) -> tuple[str, str]:
    """The image page and similar-search URL templates under ``prefix`` (the thread's script prefix, which
    ``reverse`` reads) and ``urlconf``: they never change while the process runs."""
    return _url_template("image-detail"), _url_template("api-image-similar")


PageUrls = tuple[str, str, Callable[[str | None], str | None]]


def page_urls() -> PageUrls:
    """What every hit's URLs are made from, worked out once per page: the image page and similar-search URL
    templates and the media URL maker."""
    return *_url_templates(get_script_prefix(), get_urlconf()), media_url_maker()


def hit_payload(hit: SearchHit, urls: PageUrls | None = None) -> dict[str, Any]:
    """The JSON shape of ``HitSerializer`` built directly (searches are hot; DRF field machinery is not needed),
    from a hit hydrated as values (``rows="values"``: a dict of ``HIT_FIELDS``)."""
    image = hit.image
    if not isinstance(image, dict):
        raise TypeError("hit_payload needs hits hydrated with rows='values'.")
    pk = image["id"]
    page_url, similar_url, media = urls or page_urls()
    original = media(image["original"])
    return {
        "score": round(hit.score, 6),
        "duplicates": hit.duplicates,
        "duplicate_ids": hit.duplicate_ids,
        "semantic_score": None if hit.semantic_score is None else round(hit.semantic_score, 6),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 6),
        "matched": [{"field": m.field, "label": m.label, "highlight": m.highlight} for m in hit.matches],
        "image": {
            "id": pk,
            "title": Image.display_name(title=image["title"], original_filename=image["original_filename"], pk=pk),
            "width": image["width"],
            "height": image["height"],
            "format": image["format"],
            "tags": list(image["tags"] or []),
            "attribution": image["attribution"],
            "source_link": image["source_link"],
            "source_url": image["source_url"],
            "uploader": image["uploader__username"],
            "created_at": image["created_at"].isoformat().replace("+00:00", "Z"),
            "thumbnail_url": media(image["thumbnail"]) or original,
            "original_url": original,
            "page_url": page_url.format(pk),
            "similar_url": similar_url.format(pk),
        },
    }


def page_payload(page: SearchPage) -> dict[str, Any]:
    """The JSON shape of ``SearchOutputSerializer`` for ``page`` (documented by it in the schema)."""
    urls = page_urls()
    return {
        "results": [hit_payload(hit, urls) for hit in page.hits],
        "offset": page.offset,
        "limit": page.limit,
        "has_more": page.has_more,
        "next_offset": page.next_offset,
        "best_score": page.best_score,
        "model_key": page.model_key,
        "notices": page.notices,
        "timings_ms": page.timings_ms,
        "mode": page.mode,
    }

"""The typed shape of a search: weighted terms, filters, options, and the page of hits that comes back.

Plain frozen dataclasses with no model imports at module level, so the parser and its tests stay light. The
filters are the catalogue's own (``images.filters.CatalogueFilters``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.errors import DomainError
from images.filters import CatalogueFilters as SearchFilters  # the catalogue's one definition of the filters

if TYPE_CHECKING:
    import numpy as np

    from images.models import Image

TermKind = Literal["text", "image", "url", "image_id", "vector", "field"]
SortOrder = Literal["score", "date"]
SearchMode = Literal["hybrid", "semantic", "keyword"]
Fusion = Literal["rrf", "score"]
# How hits are hydrated: "models", each hit's ``image`` is its ``Image`` row; "values", a dict of the columns a
# page of hits shows (``search.services.search_semantic.HIT_FIELDS``), for callers that only serialise them.
RowKind = Literal["models", "values"]
MODES: tuple[SearchMode, ...] = ("hybrid", "semantic", "keyword")
FUSION_DEFAULT: Fusion = "score"  # measured against "rrf" by bench/hybrid.py (bench/results/hybrid.json)

MAX_QUERY_CHARS = 2000
MAX_TERMS = 16
MAX_TERM_CHARS = 300
MAX_WEIGHT = 10.0
MAX_LIMIT = 100
MAX_WINDOW = 1000  # offset + limit never goes past this many hits
DEFAULT_LIMIT = 24
DEFAULT_COLLAPSE_THRESHOLD = 0.97


class QueryError(DomainError):
    """A query the user can fix: the message says what is wrong and where."""

    code = "invalid_query"


@dataclass(frozen=True)
class QueryTerm:
    """One weighted term. Exactly one payload field is set, matching ``kind``.

    * ``text``: ``text`` holds the words (a phrase).
    * ``image``: ``image`` holds bytes, a ``PIL.Image`` or a file path (uploaded or local picture).
    * ``url``: ``url`` is fetched through the ingestion's guarded fetcher.
    * ``image_id``: ``image_id`` names a catalogue image whose stored vector is used (never re-encoded).
    * ``vector``: ``vector`` is an already encoded query (e.g. a picture dropped in the UI a moment ago) and
      ``model_key`` says which model made it.
    * ``field``: ``text`` must match in the keyword field ``field`` (``by``, ``title``, ...; see
      ``images.keyword_query.FIELD_COLUMNS``); a negative weight excludes images that match.
    """

    kind: TermKind
    weight: float = 1.0
    text: str = ""
    image: Any = None
    url: str = ""
    image_id: int | None = None
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    model_key: str = ""
    field: str = ""

    def describe(self) -> str:
        """A short human label, used in notices and in the UI's echo of the query."""
        if self.kind == "text":
            return f'"{self.text}"'
        if self.kind == "image_id":
            return f"image:{self.image_id}"
        if self.kind == "url":
            return self.url
        if self.kind == "field":
            return f'{self.field}:"{self.text}"'
        return "your picture"


@dataclass(frozen=True)
class SearchQuery:
    """Everything ``search_run`` needs: terms, filters, cut-offs, ordering, collapsing and the page window."""

    terms: tuple[QueryTerm, ...]
    filters: SearchFilters = field(default_factory=SearchFilters)
    min_score: float | None = None
    relative_margin: float | None = None  # keep hits scoring at least best - margin
    sort: SortOrder = "score"
    collapse: bool = False
    collapse_threshold: float = DEFAULT_COLLAPSE_THRESHOLD
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    exclude_ids: tuple[int, ...] = ()
    model_id: str | None = None
    interface: str = "python"
    mode: SearchMode = "hybrid"
    fusion: Fusion = FUSION_DEFAULT
    rows: RowKind = "models"


@dataclass
class SearchHit:
    """One result: the catalogue row, its ranking score (cosine similarity in semantic mode, keyword relevance in
    keyword mode, the fused score in hybrid mode), the near-duplicates folded into it, and why it matched: the
    cosine similarity (``None`` when not computed), the keyword score (``None`` when no keyword matched) and the
    matched fields with the matched words marked. ``image`` is the ``Image`` row, or its ``HIT_FIELDS`` as a
    dict when the query asked for ``rows="values"``."""

    image: Image | dict[str, Any]
    score: float
    duplicate_ids: list[int] = field(default_factory=list)
    semantic_score: float | None = None
    keyword_score: float | None = None
    matches: list[Any] = field(default_factory=list)  # images.keyword_search.FieldMatch

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_ids)


@dataclass
class SearchPage:
    """One page of hits plus what a caller needs to fetch the next page and explain the result."""

    hits: list[SearchHit]
    offset: int
    limit: int
    has_more: bool
    model_key: str
    best_score: float | None = None
    notices: list[str] = field(default_factory=list)
    terms: tuple[QueryTerm, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: SearchMode = "semantic"

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.has_more else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

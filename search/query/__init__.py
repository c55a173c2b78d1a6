"""Query language and types: ``query_parse`` turns ``beach + 0.5 * sunset - people`` into weighted terms."""

from .parser import query_parse, terms_validate
from .types import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_TERM_CHARS,
    MAX_TERMS,
    MAX_WINDOW,
    QueryError,
    QueryTerm,
    RowKind,
    SearchFilters,
    SearchHit,
    SearchPage,
    SearchQuery,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_TERMS",
    "MAX_TERM_CHARS",
    "MAX_WINDOW",
    "QueryError",
    "QueryTerm",
    "RowKind",
    "SearchFilters",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "query_parse",
    "terms_validate",
]

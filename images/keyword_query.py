"""The keyword side of a search, engine-neutral: clauses of words and phrases, and how each engine spells them.

Words are split exactly as the index splits text (``images.keyword_sql``): runs of letters and digits, so
``IMG_2041`` is the phrase ``img 2041`` and ``Café`` is ``café`` (each engine then folds accents and stems). A
clause's units are alternatives ranked by the engine (more matched words rank higher, like a search engine's
default); a field clause looks in one field only. Pure functions; no database access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Field names of the query syntax (``by:"Michelle Spencer"``) and the ``ImageText`` column each one searches.
FIELD_COLUMNS = {
    "title": "title",
    "by": "attribution",
    "tag": "tags",
    "file": "filename",
    "desc": "description",
    "text": "picture_text",
    "auto": "autotags",
}
COLUMN_LABELS = {
    "title": "title",
    "attribution": "photographer / attribution",
    "tags": "tags",
    "filename": "file name",
    "description": "description",
    "picture_text": "text in the picture",
    "autotags": "automatic tags",
}
# Words too common to tell pictures apart; dropped from keyword clauses (never from quoted phrases).
_STOP_WORDS_TEXT = "a an and are as at be by for from has in is it its of on or that the this to was with"
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split(" "))
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class KeywordClause:
    """Alternatives (each a word or a phrase of words), optionally confined to one ``ImageText`` column."""

    units: tuple[tuple[str, ...], ...]
    column: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class KeywordQuery:
    """Ranking clauses (optional), required and excluded clauses (every hit matches each required one and no
    excluded one, in every mode), and negated clauses (left out of the keyword ranking only)."""

    ranked: tuple[KeywordClause, ...] = ()
    required: tuple[KeywordClause, ...] = ()
    excluded: tuple[KeywordClause, ...] = ()
    negated: tuple[KeywordClause, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.ranked or self.required)

    @property
    def restricts(self) -> bool:
        return bool(self.required or self.excluded)


def keyword_words(text: str) -> list[str]:
    """The lower-cased words of ``text`` as the index sees them. Pure."""
    return _WORD.findall(text.lower())


def clause_from_text(
    *, text: str, column: str | None = None, weight: float = 1.0, phrase: bool = False
) -> KeywordClause:
    """A clause for the words of ``text``: one phrase when ``phrase`` (or quoted), else each word an alternative,
    stop words dropped unless nothing else is left. An id-like word (``IMG_2041``) stays one phrase. Pure."""
    if phrase:
        words = tuple(keyword_words(text))
        return KeywordClause(units=(words,) if words else (), column=column, weight=weight)
    units = [tuple(keyword_words(token)) for token in text.split()]
    units = [unit for unit in units if unit]
    kept = [unit for unit in units if not (len(unit) == 1 and unit[0] in STOP_WORDS)]
    return KeywordClause(units=tuple(dict.fromkeys(kept or units)), column=column, weight=weight)


def fts5_match(clause: KeywordClause, *, all_units: bool = False) -> str:
    """The FTS5 MATCH expression of ``clause`` (any unit, or every unit with ``all_units``). Tokens are letters
    and digits only, so quoting them is always safe."""
    joiner = " AND " if all_units else " OR "
    expression = "(" + joiner.join('"' + " ".join(unit) + '"' for unit in clause.units) + ")"
    return f"{{{clause.column}}} : {expression}" if clause.column else expression


def tsquery_text(clause: KeywordClause, *, all_units: bool = False) -> str:
    """The ``to_tsquery`` text of ``clause`` (units joined by ``|``, or ``&`` with ``all_units``); phrases use
    ``<->``. The column restriction is applied by the caller."""
    joiner = " & " if all_units else " | "
    return "(" + joiner.join("(" + " <-> ".join(unit) + ")" for unit in clause.units) + ")"

"""The keyword side of a parsed query: which terms rank, which must match and which must not."""

from __future__ import annotations

from images.keyword_query import FIELD_COLUMNS, KeywordClause, KeywordQuery, clause_from_text

from .types import QueryTerm


def keyword_query_from_terms(*, terms: tuple[QueryTerm, ...]) -> KeywordQuery:
    """The ``KeywordQuery`` of ``terms``. Pure.

    A positive text term ranks (any of its words, stop words dropped); a negative one leaves images that match all
    of its words out of the keyword ranking (the semantic side pushes away from it as usual). A positive field
    term (``by:"Michelle Spencer"``) must match in its field and ranks too; a negative one excludes, in every
    mode. Image, picture and URL terms have no keyword side.
    """
    ranked: list[KeywordClause] = []
    required: list[KeywordClause] = []
    excluded: list[KeywordClause] = []
    negated: list[KeywordClause] = []
    for term in terms:
        if term.kind == "text":
            clause = clause_from_text(text=term.text, weight=abs(term.weight))
        elif term.kind == "field":
            clause = clause_from_text(text=term.text, column=FIELD_COLUMNS[term.field], weight=abs(term.weight),
                                      phrase=True)  # fmt: skip
        else:
            continue
        if not clause.units:
            continue
        if term.weight < 0:
            (excluded if term.kind == "field" else negated).append(clause)
        else:
            ranked.append(clause)
            if term.kind == "field":
                required.append(clause)
    return KeywordQuery(ranked=tuple(ranked), required=tuple(required), excluded=tuple(excluded),
                        negated=tuple(negated))  # fmt: skip

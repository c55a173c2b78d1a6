"""Reading the keyword index: ranked matches, the required/excluded restriction, and highlighted fields.

PostgreSQL uses ``images_imagetext.document`` (``ts_rank`` over the weighted ``tsvector``, GIN for matching);
SQLite the FTS5 table (``bm25`` with the same field weights). Both return scores normalised to (0, 1] per clause,
so callers never see an engine's scale. Read-only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from images.keyword_query import COLUMN_LABELS, KeywordClause, KeywordQuery, fts5_match, tsquery_text
from images.keyword_sql import FIELDS
from images.models import Image

FIELD_WEIGHTS = (10.0, 10.0, 4.0, 4.0, 2.0, 1.0, 2.0)  # bm25 weights, in FIELDS order (PostgreSQL: labels A-D)
FETCH_GROWTH = 4
MAX_FETCH = 20_000
COVERAGE_POWER = 1.0  # how steeply partial matches lose weight (see _coverage; measured by bench/hybrid.py)
DF_CAP = 2_000  # document frequencies are counted up to this (enough to tell rare words from common ones)
PARTIAL_SCAN = 500  # images holding some words of a clause scored at most (the newest; see _clause_candidates)
EXCERPT_BEFORE = 60
EXCERPT_CHARS = 240
_START, _STOP = "\x02", "\x03"
_HIDDEN = str.maketrans({"\x04": "<", "\x05": ">", "\x06": "&"})


@dataclass(frozen=True)
class FieldMatch:
    """A field of an image that matched the keywords, with the matched words marked (``<mark>``, HTML-escaped)."""

    field: str
    label: str
    highlight: str


def keyword_ranking(*, query: KeywordQuery, base: QuerySet[Image] | None, limit: int) -> list[tuple[int, float]]:
    """Up to ``limit`` ids of ``base`` (``None``: of any indexed image, unchecked) matching ``query``, best first
    (ties by id), each with its keyword score in (0, 1]: per ranking clause the engine's score over the clause's
    best, times the share of the clause's evidence the image holds (``Red Hook`` is weak evidence for ``red
    circle``), weighted and averaged."""
    clauses = query.ranked or query.required
    if not clauses:
        return []
    total = sum(abs(c.weight) for c in clauses)
    fetch = max(limit + 16, 64)
    while True:
        scores: dict[int, float] = {}
        saturated = False
        for clause in clauses:
            rows, coverage = _clause_candidates(clause, query, fetch)
            saturated = saturated or len(rows) >= fetch
            best = max((s for _, s in rows), default=0.0) or 1.0
            for image_id, score in rows:
                share = clause.weight * max(score, 0.0) / best * coverage.get(image_id, 1.0) ** COVERAGE_POWER / total
                scores[image_id] = scores.get(image_id, 0.0) + share
        passing: set[int] = set(scores)
        if base is not None:
            ids, passing = list(scores), set()
            for start in range(0, len(ids), 900):
                # "width" keeps SQLite off the (status, created_at) covering index, which it would scan whole.
                batch = base.filter(pk__in=ids[start : start + 900]).values_list("id", "width")
                passing.update(i for i, _ in batch)
        ranked = sorted(((i, s) for i, s in scores.items() if i in passing and s > 0), key=lambda p: (-p[1], p[0]))
        if len(ranked) >= limit or not saturated or fetch >= MAX_FETCH:
            return ranked[:limit]
        fetch = min(fetch * FETCH_GROWTH, MAX_FETCH)


def keyword_restriction(*, query: KeywordQuery) -> Q | None:
    """The condition on ``Image`` for the required and excluded clauses (field terms), or ``None``. Lazy."""
    condition = Q()
    for clause in query.required:
        condition &= Q(id__in=RawSQL(*_matching_ids_sql(clause)))
    for clause in query.excluded:
        condition &= ~Q(id__in=RawSQL(*_matching_ids_sql(clause)))
    return condition if query.restricts else None


def keyword_highlights(*, query: KeywordQuery, image_ids: Sequence[int]) -> dict[int, list[FieldMatch]]:
    """For each of ``image_ids`` that matches the query's positive clauses, its matched fields (in field order)
    with the matched words marked. One query."""
    clauses = (*query.ranked, *query.required)
    ids = [int(i) for i in image_ids]
    if not clauses or not ids:
        return {}
    marks = ", ".join(["%s"] * len(ids))
    if connection.vendor == "postgresql":
        columns: list[str] = []
        params: list[Any] = []
        for column in FIELDS:
            usable = [c for c in clauses if c.column in (None, column)]
            if not usable:
                columns.append("NULL")
                continue
            text = " | ".join(tsquery_text(c) for c in usable)
            columns.append(
                f"CASE WHEN to_tsvector('semsearch', semsearch_words({column})) @@ to_tsquery('semsearch', %s) "
                # ts_headline's parser reads <...> as markup and &...; as entities: hide them from it, put back below
                f"THEN ts_headline('semsearch', translate({column}, '<>&', chr(4) || chr(5) || chr(6)), "
                "to_tsquery('semsearch', %s), "
                "'HighlightAll=true, StartSel=' || chr(2) || ', StopSel=' || chr(3)) END"
            )
            params += [text, text]
        sql = f"SELECT image_id, {', '.join(columns)} FROM images_imagetext WHERE image_id IN ({marks})"
        params += ids
    else:
        expression = " OR ".join(fts5_match(c) for c in clauses)
        columns = [f"highlight(images_imagetext_fts, {n}, char(2), char(3))" for n in range(len(FIELDS))]
        sql = (f"SELECT rowid, {', '.join(columns)} FROM images_imagetext_fts WHERE images_imagetext_fts MATCH %s "
               f"AND rowid IN ({marks})")  # fmt: skip
        params = [expression, *ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out: dict[int, list[FieldMatch]] = {}
    for image_id, *values in rows:
        matches = [
            FieldMatch(field=column, label=COLUMN_LABELS[column], highlight=_marked_html(value))
            for column, value in zip(FIELDS, values, strict=True)
            if value and _START in value
        ]
        if not matches and connection.vendor == "postgresql":  # matched, but the headline parser split otherwise
            matches = [FieldMatch(field=c, label=COLUMN_LABELS[c], highlight=_marked_html(v[:EXCERPT_CHARS]))
                       for c, v in zip(FIELDS, values, strict=True) if v]  # fmt: skip
        if matches:
            out[int(image_id)] = matches
    return out


def _clause_candidates(
    clause: KeywordClause, query: KeywordQuery, fetch: int
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """Up to ``fetch`` of ``clause``'s best matches with their engine scores, and each one's coverage (absent: 1).

    A clause of several words first asks for the images holding all of them: when there are ``fetch`` of those,
    they are the candidates, at full coverage. An image holding only some of the words is weighed down by its share
    of the evidence (``_coverage``) and, but for rare length effects, ranks below them. With fewer, the rest are
    the best of the newest ``PARTIAL_SCAN`` images holding any of the words (all of them when there are no more):
    the engine cannot rank without scoring every match, and a common word has tens of thousands at 1M images
    (~25 ms to score, against ~1 ms for the bounded scan)."""
    if len(clause.units) == 1:
        return _clause_rows(clause, query, fetch, all_units=False), {}
    whole = _clause_rows(clause, query, fetch, all_units=True)
    if len(whole) >= fetch:
        return whole, {}
    held = {image_id for image_id, _ in whole}
    scanned = _clause_rows(clause, query, max(fetch, PARTIAL_SCAN), all_units=False, newest_first=True)
    partial = [(image_id, score) for image_id, score in scanned if image_id not in held]
    since = min((image_id for image_id, _ in scanned), default=0)
    coverage = _coverage(clause, [image_id for image_id, _ in partial], since=since)
    partial.sort(key=lambda row: (-row[1] * coverage.get(row[0], 1.0), row[0]))
    return whole + partial[: fetch - len(whole)], coverage


def _clause_rows(
    clause: KeywordClause, query: KeywordQuery, fetch: int, *, all_units: bool, newest_first: bool = False
) -> list[tuple[int, float]]:
    """``clause``'s ``fetch`` best matches (or, ``newest_first``, its newest ``fetch``, scored) with their engine
    scores, under the query's required and excluded clauses."""
    key = "image_id" if connection.vendor == "postgresql" else "rowid"
    order = f"{key} DESC" if newest_first else f"score DESC, {key}"
    if connection.vendor == "postgresql":
        conditions, params = _pg_match(clause, all_units=all_units)
        for extra in query.required:
            sql, extra_params = _pg_match(extra, all_units=True)
            conditions += f" AND {sql}"
            params += extra_params
        for extra in (*query.excluded, *query.negated):
            sql, extra_params = _pg_match(extra, all_units=True)
            conditions += f" AND NOT ({sql})"
            params += extra_params
        rank_weights = "{" + ",".join(str(w) for w in (0.1, 0.2, 0.4, 1.0)) + "}"
        statement = (f"SELECT image_id, ts_rank('{rank_weights}', document, to_tsquery('semsearch', %s)) AS score "
                     f"FROM images_imagetext WHERE {conditions} ORDER BY {order} LIMIT %s")  # fmt: skip
        params = [tsquery_text(clause), *params, fetch]
    else:
        expression = "(" + fts5_match(clause, all_units=all_units) + ")"
        for extra in query.required:
            expression += " AND (" + fts5_match(extra, all_units=True) + ")"
        for extra in (*query.excluded, *query.negated):
            expression += " NOT (" + fts5_match(extra, all_units=True) + ")"
        weights = ", ".join(str(w) for w in FIELD_WEIGHTS)
        statement = (f"SELECT rowid, -bm25(images_imagetext_fts, {weights}) AS score FROM images_imagetext_fts "
                     f"WHERE images_imagetext_fts MATCH %s ORDER BY {order} LIMIT %s")  # fmt: skip
        params = [expression, fetch]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [(int(i), float(s)) for i, s in cursor.fetchall()]


def _coverage(clause: KeywordClause, ids: list[int], *, since: int) -> dict[int, float]:
    """The share of ``clause``'s evidence each of ``ids`` holds: the inverse document frequencies (BM25's) of the
    units it matches over those of all units. A word no image has weighs most, so matching only ``red`` of
    ``red circle`` when no image has ``circle`` is weak evidence. ``ids`` are all at least ``since``
    (where a common word's candidates are looked for). One-unit clauses skip this (absent: 1)."""
    if len(clause.units) < 2 or not ids:
        return {}
    wanted = set(ids)
    units = [KeywordClause(units=(unit,), column=clause.column) for unit in clause.units]
    matched: dict[int, float] = dict.fromkeys(ids, 0.0)
    weights = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT coalesce(max(image_id), 0) FROM images_imagetext")
            select = "SELECT image_id FROM images_imagetext WHERE document @@ to_tsquery('semsearch', %s)"
            arguments = [tsquery_text(unit) for unit in units]
        else:
            cursor.execute("SELECT coalesce(max(image_id), 0) FROM images_imagetext")
            select = "SELECT rowid FROM images_imagetext_fts WHERE images_imagetext_fts MATCH %s"
            arguments = [fts5_match(unit) for unit in units]
        total = int(cursor.fetchone()[0])
        column = "image_id" if connection.vendor == "postgresql" else "rowid"
        for argument in arguments:
            cursor.execute(f"SELECT count(*) FROM ({select} LIMIT %s) AS capped", [argument, DF_CAP + 1])
            frequency = int(cursor.fetchone()[0])
            cursor.execute(f"{select} AND {column} >= %s", [argument, since])  # which candidates have it
            having = {int(row[0]) for row in cursor.fetchall()}
            weight = math.log(1 + (max(total, frequency) - frequency + 0.5) / (frequency + 0.5))
            weights.append(weight)
            for image_id in having & wanted:
                matched[image_id] += weight
    whole = sum(weights) or 1.0
    return {image_id: share / whole for image_id, share in matched.items()}


def _pg_match(clause: KeywordClause, *, all_units: bool) -> tuple[str, list[Any]]:
    text = tsquery_text(clause, all_units=all_units)
    sql = "document @@ to_tsquery('semsearch', %s)"
    params: list[Any] = [text]
    if clause.column:
        sql += f" AND to_tsvector('semsearch', semsearch_words({clause.column})) @@ to_tsquery('semsearch', %s)"
        params.append(text)
    return sql, params


def _matching_ids_sql(clause: KeywordClause) -> tuple[str, list[Any]]:
    if connection.vendor == "postgresql":
        sql, params = _pg_match(clause, all_units=True)
        return f"SELECT image_id FROM images_imagetext WHERE {sql}", params
    return (
        "SELECT rowid FROM images_imagetext_fts WHERE images_imagetext_fts MATCH %s",
        [fts5_match(clause, all_units=True)],
    )


def _marked_html(value: str) -> str:
    """``value`` HTML-escaped with its marked words in ``<mark>``; long text cut to an excerpt around the first."""
    first = value.find(_START)
    if len(value) > EXCERPT_CHARS and first > EXCERPT_BEFORE:
        value = "…" + value[first - EXCERPT_BEFORE :]
    if len(value) > EXCERPT_CHARS:
        cut = value[:EXCERPT_CHARS]
        if cut.count(_START) > cut.count(_STOP):
            cut += _STOP
        value = cut + "…"
    value = value.translate(_HIDDEN)
    parts: Iterable[str] = value.split(_START)
    out = []
    for n, part in enumerate(parts):
        if n == 0:
            out.append(html.escape(part.replace(_STOP, "")))
            continue
        marked, _, rest = part.partition(_STOP)
        out.append(f"<mark>{html.escape(marked)}</mark>{html.escape(rest.replace(_STOP, ''))}")
    return "".join(out)

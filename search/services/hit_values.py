"""A page of hits as plain values, its SQL compiled once per page size when the page is unfiltered.

Unfiltered pages (ready images only: the usual search) are the common case, and Django compiling their query was
the largest part of loading them (0.4 of 0.95 ms in process on the 2-core EPYC). So each thread keeps, per
database and number of ids, the compiled statement and its compiler (for the column converters: ``tags`` from
JSON, ``created_at`` on SQLite) and runs it with the page's ids. Filtered pages go through the ORM as before.
A cache only: any statement can be compiled again from the queryset at any time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler

from images.models import Image

from .search_filters import ready_images

STATEMENTS_MAX = 32  # per thread: page sizes differ little (a page, plus a few slack ids)
_local = threading.local()


@dataclass(frozen=True)
class _Statement:
    sql: str
    head: tuple[Any, ...]  # the parameters before the ids (the status)
    names: tuple[str, ...]
    compiler: SQLCompiler


def hit_values(base: QuerySet[Image], ids: list[int], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of ``base`` among ``ids`` as dicts of ``fields``, exactly as ``base.filter(pk__in=ids)
    .values(*fields)`` gives them; one query. Read-only."""
    ids = list(dict.fromkeys(ids))
    if not ids or base.query.where != ready_images().query.where:
        return list(base.filter(pk__in=ids).values(*fields))
    statement = _statement(base, len(ids), fields)
    if statement is None:
        return list(base.filter(pk__in=ids).values(*fields))
    with statement.compiler.connection.cursor() as cursor:
        cursor.execute(statement.sql, (*statement.head, *ids))
        rows = cursor.fetchall()
    return [dict(zip(statement.names, row, strict=True)) for row in statement.compiler.results_iter(results=[rows])]


def _statement(base: QuerySet[Image], count: int, fields: tuple[str, ...]) -> _Statement | None:
    """The compiled statement for ``count`` ids (from this thread's cache, or compiled now); ``None`` when the
    ids are not simply its last parameters (then the ORM runs the query itself)."""
    connection = connections[base.db]
    cache: dict[tuple[str, int, tuple[str, ...]], _Statement] = _local.__dict__.setdefault("statements", {})
    key = (base.db, count, fields)
    statement = cache.get(key)
    if statement is not None and statement.compiler.connection is connection:
        return statement
    placeholders = list(range(-count, 0))  # ids no image has, to find them among the parameters
    queryset = base.filter(pk__in=placeholders).values(*fields)
    compiler = queryset.query.get_compiler(using=base.db)
    sql, params = compiler.as_sql()
    if list(params[len(params) - count :]) != placeholders:
        return None
    if len(cache) >= STATEMENTS_MAX:
        cache.clear()
    names = (*queryset.query.extra_select, *queryset.query.values_select, *queryset.query.annotation_select)
    statement = cache[key] = _Statement(sql, tuple(params[: len(params) - count]), names, compiler)
    return statement

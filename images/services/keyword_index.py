"""Rebuilding the keyword index from the catalogue (the triggers keep it in step; this repairs or backfills)."""

from __future__ import annotations

from django.db import connection, transaction

from images import keyword_sql
from images.models import ImageText


def keyword_index_rebuild() -> int:
    """Recompute every image's keyword document from its sources, in one transaction (searches keep reading the
    old documents until it commits). Idempotent. Returns how many documents the index holds."""
    postgres = connection.vendor == "postgresql"
    statements = keyword_sql.PG_REBUILD if postgres else keyword_sql.SQLITE_REBUILD
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return ImageText.objects.count()

"""``manage.py keyword_reindex``: rebuild the keyword index from the catalogue (backfill or repair)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from images.services.keyword_index import keyword_index_rebuild


class Command(BaseCommand):
    help = (
        "Recompute every image's keyword document (title, tags, file name, attribution, description, picture "
        "text, accepted automatic tags). Database triggers keep it current; run this after restoring a backup "
        "made without them, or to repair."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = keyword_index_rebuild()
        self.stdout.write(f"keyword index rebuilt: {count} documents")

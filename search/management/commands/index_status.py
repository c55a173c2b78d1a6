"""``manage.py index_status``: model, snapshot version, type, count, delta size, recall, pending/failed images."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Show the index state of the active model (or --model-key)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model-key", default=None)
        parser.add_argument("--json", action="store_true", help="print the full status as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        from search.index import index_status

        status = index_status(options["model_key"])
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, default=str))
            return
        recall = status["recall_at_10"]
        lines = [
            ("model", status["model_key"]),
            ("snapshot version", status["version"] if status["version"] is not None else "none (exact search)"),
            ("type", f"{status['factory'] or '-'} {status['params'] or ''}".strip()),
            ("vectors in snapshot", status["count"]),
            ("delta (newer embeddings)", status["delta"]),
            ("recall@10", f"{recall:.3f}" if recall is not None else "-"),
            ("built", status["built_at"] or "-"),
            ("images ready / pending / failed",
             f"{status['images']['ready']} / {status['pending']} / {status['failed']}"),
        ]  # fmt: skip
        width = max(len(label) for label, _ in lines)
        for label, value in lines:
            self.stdout.write(f"{label:<{width}}  {value}")

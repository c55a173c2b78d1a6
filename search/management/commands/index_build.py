"""``manage.py index_build``: build a snapshot now, in this process."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.dispatch import INDEX_BUILD, task_send
from search.index import index_build
from search.state import active_model_key


class Command(BaseCommand):
    help = "Build a Faiss snapshot of the stored embeddings (the active model unless --model-key is given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model-key", default=None, help="model key to build (default: the active model)")
        parser.add_argument("--force", action="store_true", help="rebuild even when the snapshot is current")
        parser.add_argument("--background", action="store_true", help="enqueue the build for a worker instead")

    def handle(self, *args: Any, **options: Any) -> None:
        model_key = options["model_key"] or active_model_key()
        if options["background"]:
            task_send(INDEX_BUILD, model_key=model_key, force=bool(options["force"]))
            self.stdout.write(f"enqueued a build of {model_key}")
            return
        result = index_build(model_key=model_key, force=bool(options["force"]))
        if result["status"] == "busy":
            raise CommandError(f"another process is building the {model_key} snapshot; try again when it is done")
        self.stdout.write(json.dumps(result, indent=2))

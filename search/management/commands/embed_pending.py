"""``manage.py embed_pending``: embed every pending image (and ready ones the active model lacks)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from images.models import ImageStatus
from images.services import image_embedding_enqueue
from search.services.embedding import embedding_compute
from search.state import active_model_key, images_missing_embedding


class Command(BaseCommand):
    help = "Enqueue (or with --now, run here) embedding of pending images and of ready images lacking an embedding."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", action="store_true", help="embed in this process instead of enqueuing")
        parser.add_argument("--failed", action="store_true", help="also retry images marked failed")
        parser.add_argument("--chunk", type=int, default=64, help="images per task")

    def handle(self, *args: Any, **options: Any) -> None:
        model_key = active_model_key()
        statuses = [ImageStatus.PENDING, ImageStatus.READY] + ([ImageStatus.FAILED] if options["failed"] else [])
        ids = list(images_missing_embedding(model_key=model_key, statuses=statuses))
        chunk = max(1, int(options["chunk"]))
        totals = {"embedded": 0, "failed": 0, "skipped": 0}
        for start in range(0, len(ids), chunk):
            batch = ids[start : start + chunk]
            if options["now"]:
                result = embedding_compute(image_ids=batch, model_key=model_key)
                for name in totals:
                    totals[name] += result[name]
                self.stdout.write(f"{start + len(batch)}/{len(ids)} done")
            else:
                image_embedding_enqueue(image_ids=batch, model_key=model_key, at_once=True)
        if options["now"]:
            self.stdout.write(f"{model_key}: {totals}")
        else:
            self.stdout.write(f"enqueued {len(ids)} image(s) for {model_key} in {-(-len(ids) // chunk)} task(s)")

"""``manage.py model_switch``: switch the embedding model without downtime, follow it, remove an old model."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "model_switch MODEL_ID [--revision R]: start re-embedding with MODEL_ID in the background; it becomes active "
        "when it covers every image. --status lists models; --step advances the switch here; --remove KEY deletes "
        "a retired model's embeddings and snapshots."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model_id", nargs="?", help="Hugging Face id or local folder ('toy': the bundled model)")
        parser.add_argument("--revision", default="")
        parser.add_argument("--status", action="store_true")
        parser.add_argument("--step", action="store_true", help="run one switch step in this process")
        parser.add_argument("--remove", metavar="MODEL_KEY", help="delete a retired model's embeddings and index")

    def handle(self, *args: Any, **options: Any) -> None:
        from core.errors import DomainError
        from search.services.models import model_remove, model_switch_start, model_switch_status, model_switch_step

        try:
            if options["remove"]:
                self.stdout.write(json.dumps(model_remove(model_key=options["remove"])))
            elif options["model_id"]:
                target = model_switch_start(model_id=options["model_id"], revision=options["revision"])
                self.stdout.write(f"{target.model_key}: {target.state}")
            elif options["step"]:
                self.stdout.write(json.dumps(model_switch_step()))
            if options["status"] or not (options["remove"] or options["model_id"] or options["step"]):
                self.stdout.write(json.dumps(model_switch_status(), indent=2))
        except DomainError as exc:
            raise CommandError(exc.message) from exc

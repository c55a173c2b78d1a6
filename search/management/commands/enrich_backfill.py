"""``manage.py enrich_backfill``: read the text of, and propose automatic tags for, images already stored."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from images.selectors import images_for_ocr
from images.services.ocr import OcrUnavailableError, ocr_status
from images.services.picture_text import picture_text_compute
from search.enrichment import autotags_recompute

CHUNK = 16


class Command(BaseCommand):
    help = "Back-fill enrichment in this process, with a progress bar: OCR of ready images not read yet, and the "
    "automatic tags of every ready image (recomputed from the stored vectors of the active model)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", choices=["ocr", "tags"], help="run one enrichment (default: both)")
        parser.add_argument("--force", action="store_true", help="OCR again images already read")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["no_progress"]
        if options["only"] in (None, "ocr"):
            status = ocr_status()
            if not status["available"]:
                if options["only"] == "ocr":
                    raise CommandError(f"OCR is unavailable: {status['reason']}")
                self.stderr.write(f"OCR skipped: {status['reason']}")
            else:
                ids = images_for_ocr(force=options["force"])
                totals = {"read": 0, "failed": 0, "skipped": 0}
                with tqdm(total=len(ids), desc="OCR", unit="image", disable=quiet) as bar:
                    for start in range(0, len(ids), CHUNK):
                        chunk = ids[start : start + CHUNK]
                        try:
                            result = picture_text_compute(image_ids=chunk, force=options["force"])
                        except OcrUnavailableError as exc:
                            raise CommandError(str(exc)) from exc
                        for name in totals:
                            totals[name] += result[name]
                        bar.update(len(chunk))
                self.stdout.write(f"OCR: {totals}")
        if options["only"] in (None, "tags"):
            if not settings.SEMSEARCH_AUTOTAGS:
                self.stderr.write("Automatic tags skipped: SEMSEARCH_AUTOTAGS is off.")
                return
            with tqdm(desc="Automatic tags", unit="image", disable=quiet) as bar:
                report = autotags_recompute(progress=bar.update)
            self.stdout.write(f"Automatic tags: {report}")

"""``manage.py import_images``: a CSV of image URLs (the seed's format by default) or a folder, with progress."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from core.errors import DomainError
from images.services.csv_import import csv_columns_parse, csv_import_run
from images.services.folder_import import folder_import_run
from images.services.importing import ImportSummary
from search.embeddings import ModelUnavailableError, model_key_for


class Command(BaseCommand):
    help = (
        "Import images from a CSV of URLs (--input-data; seed columns link,path,tooltip by default) or from a folder "
        "(--dir). Re-running resumes: what was imported before is skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--input-data", type=Path, help="CSV file of image URLs.")
        source.add_argument("--dir", type=Path, help="Folder to import recursively.")
        parser.add_argument("--batch-size", type=int, default=32, help="Images per embedding task (default 32).")
        parser.add_argument("--model-id", default="", help="Embed with this model (hub id, folder or 'toy').")
        parser.add_argument("--workers", type=int, default=8, help="Parallel downloads/decodes (default 8).")
        parser.add_argument("--columns", default="", help="CSV column mapping, e.g. url=path,link=link,title=tooltip")
        parser.add_argument("--report", type=Path, help="Where to write failed rows (CSV with an error column).")
        parser.add_argument("--dry-run", action="store_true", help="CSV: parse and validate every row; no downloads.")
        parser.add_argument("--delete-missing", action="store_true", help="Folder: delete images whose file is gone.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1 or options["workers"] < 1:
            raise CommandError("--batch-size and --workers must be at least 1.")
        if options["input_data"] is None and (options["columns"] or options["dry_run"]):
            raise CommandError("--columns and --dry-run apply to --input-data only.")
        if options["dir"] is None and options["delete_missing"]:
            raise CommandError("--delete-missing applies to --dir only.")
        model_key = self._model_key(options["model_id"])
        # call_command() passes keyword options through without argparse's type conversion
        for name in ("input_data", "dir", "report"):
            if options[name] is not None:
                options[name] = Path(options[name])
        quiet = options["no_progress"] or options["dry_run"]
        bar = tqdm(unit="img", disable=quiet, dynamic_ncols=True, file=sys.stderr)
        stop = threading.Event()
        common = {"workers": options["workers"], "batch_size": options["batch_size"], "model_key": model_key,
                  "report_path": options["report"], "stop": stop, "on_total": self._total(bar),
                  "on_row": lambda outcome: bar.update(1)}  # fmt: skip
        previous = self._install_interrupt(stop)
        try:
            if options["input_data"] is not None:
                summary = csv_import_run(path=options["input_data"], columns=csv_columns_parse(options["columns"]),
                                         dry_run=options["dry_run"], **common)  # fmt: skip
            else:
                summary = folder_import_run(root=options["dir"], delete_missing=options["delete_missing"], **common)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        self._report(summary, dry_run=options["dry_run"])

    def _model_key(self, model_id: str) -> str | None:
        if not model_id:
            return None
        revision = settings.SEMSEARCH_MODEL_REVISION if model_id == settings.SEMSEARCH_MODEL_ID else None
        try:
            return model_key_for(model_id, revision or None)
        except ModelUnavailableError as exc:
            raise CommandError(f"--model-id {model_id!r}: {exc}") from exc

    @staticmethod
    def _total(bar: tqdm):
        def set_total(total: int) -> None:
            bar.reset(total=total)

        return set_total

    @staticmethod
    def _install_interrupt(stop: threading.Event):
        """First Ctrl-C: finish the files in flight, record them, write the report. A second one aborts."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        return signal.signal(signal.SIGINT, handler)

    def _report(self, summary: ImportSummary, *, dry_run: bool) -> None:
        if dry_run:
            self.stdout.write(
                f"Dry run: {summary.total:,} rows parsed; {summary.created:,} would be fetched, {summary.skipped:,} "
                f"already imported or repeated, {summary.failed:,} invalid."
                + (f" Invalid rows listed in {summary.report_path}." if summary.report_path else "")
            )
            return
        self.stdout.write(("Import " + ("interrupted" if summary.interrupted else "finished")) + ": " + summary.line())
        if summary.interrupted:
            raise CommandError("Interrupted before the end; run the same command again to resume.")

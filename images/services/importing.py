"""What the CSV and folder importers share: a bounded thread pipeline, the run summary and the failure report."""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone

from core.errors import DomainError

from .ingest import image_embedding_enqueue

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ImportInputError(DomainError):
    """The import cannot start: a missing file or folder, an unreadable CSV, an unknown column."""

    code = "import_invalid"


@dataclass
class ImportSummary:
    """Counts of one run. ``failures`` holds (row fields, reason) for the report."""

    total: int = 0
    created: int = 0
    existing: int = 0
    skipped: int = 0
    renamed: int = 0
    deleted: int = 0
    missing: int = 0
    failed: int = 0
    interrupted: bool = False
    report_path: Path | None = None
    failures: list[tuple[dict[str, str], str]] = field(default_factory=list)

    def fail(self, fields: dict[str, str], reason: str) -> None:
        self.failed += 1
        self.failures.append((fields, reason))

    def line(self) -> str:
        parts = [f"{self.total:,} seen", f"{self.created:,} created", f"{self.existing:,} already stored",
                 f"{self.skipped:,} skipped (imported before)"]  # fmt: skip
        if self.renamed:
            parts.append(f"{self.renamed:,} renamed")
        if self.deleted:
            parts.append(f"{self.deleted:,} deleted")
        if self.missing:
            parts.append(f"{self.missing:,} missing on disk (kept; pass --delete-missing to remove)")
        parts.append(f"{self.failed:,} failed")
        text = ", ".join(parts) + "."
        if self.report_path:
            text += f" Failures listed in {self.report_path}."
        return text


class EmbedBatcher:
    """Collects created image ids and enqueues them for embedding every ``batch_size`` of them (``flush`` sends the
    rest)."""

    def __init__(self, *, batch_size: int, model_key: str | None) -> None:
        self.batch_size, self.model_key = max(1, batch_size), model_key
        self.ids: list[int] = []

    def add(self, image_id: int) -> None:
        self.ids.append(image_id)
        if len(self.ids) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.ids:
            image_embedding_enqueue(image_ids=self.ids, model_key=self.model_key)
            self.ids = []


def _attempt(work: Callable[[T], Any], item: T) -> Any:
    try:
        return work(item)
    except DomainError as exc:
        return exc
    except Exception as exc:  # one bad item must not end a 25,000-row import; it lands in the report
        logger.exception("import item failed unexpectedly")
        return DomainError(f"Unexpected {exc.__class__.__name__}: {exc}")


def pipeline_run(
    *,
    items: Iterable[T],
    work: Callable[[T], Any],
    record: Callable[[T, Any], None],
    workers: int,
    stop: threading.Event | None = None,
) -> bool:
    """Run ``work`` on items in a thread pool (no database there) and ``record`` each result in this thread, as
    they complete; ``work`` errors arrive at ``record`` as ``DomainError`` instances. At most ``2 × workers``
    items are in flight. Returns False when stopped early (``stop`` set or Ctrl-C): finished items are recorded."""
    iterator = iter(items)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="import")
    pending: dict[Future, T] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < 2 * max(1, workers) and not (stop and stop.is_set()):
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                pending[pool.submit(_attempt, work, item)] = item
            if not pending:
                break
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                record(pending.pop(future), future.result())
    except KeyboardInterrupt:
        return False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return exhausted


def report_write(*, summary: ImportSummary, path: Path | None, name: str) -> None:
    """Write every failure (its fields plus ``error``) as CSV; a default path under DATA_DIR/reports when none is
    given. Writes nothing when nothing failed. The report can be fed back as input once the cause is fixed."""
    if not summary.failures:
        return
    if path is None:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        path = Path(settings.DATA_DIR) / "reports" / f"{name}-failures-{stamp}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for fields, _reason in summary.failures:
        columns += [key for key in fields if key not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "error"], extrasaction="ignore")
        writer.writeheader()
        for fields, reason in summary.failures:
            writer.writerow({**fields, "error": reason})
    summary.report_path = path

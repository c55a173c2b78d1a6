"""Import from a CSV of image URLs, compatible with the seed (``link,path,tooltip``) and any other column layout."""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.db import DatabaseError

from images.selectors import image_source_urls

from .fetching import fetch_url
from .importing import EmbedBatcher, ImportInputError, ImportSummary, pipeline_run, report_write
from .ingest import PreparedImage, image_prepare, image_record

FIELDS = ("url", "link", "title", "attribution", "tags")
SEED_COLUMNS = {"url": "path", "link": "link", "title": "tooltip"}
# The seed's tooltip: "Woman exploring a forest" by Michelle Spencer
_TITLE_BY = re.compile(r'^\s*"(?P<title>.*)"\s+by\s+(?P<author>.+?)\s*$', re.DOTALL)
# ... or, for untitled photos: Photo by Mathias Bach Laursen
_PHOTO_BY = re.compile(r"^\s*Photo\s+by\s+(?P<author>.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class CsvRow:
    number: int
    url: str
    link: str = ""
    title: str = ""
    attribution: str = ""
    tags: list[str] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)


def csv_columns_parse(spec: str | None) -> dict[str, str]:
    """``url=path,link=link,title=tooltip`` -> field to column, on top of the seed's layout."""
    columns = dict(SEED_COLUMNS)
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in FIELDS or not column.strip():
            raise ImportInputError(
                f"Bad column mapping {part.strip()!r}: use FIELD=COLUMN with FIELD in {', '.join(FIELDS)}."
            )
        columns[key] = column.strip()
    return columns


def title_split(text: str) -> tuple[str, str]:
    """``"Title" by Author`` -> (Title, Author); ``Photo by Author`` -> ("", Author); anything else is all title."""
    match = _TITLE_BY.match(text or "")
    if match:
        return match["title"].strip(), match["author"].strip()
    match = _PHOTO_BY.match(text or "")
    if match:
        return "", match["author"].strip()
    return (text or "").strip(), ""


def url_problem(url: str) -> str | None:
    """Why this is not a fetchable URL at all (checked without any network), or None."""
    if not url:
        return "The row has no URL."
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return f"Not an http(s) URL: {url[:200]!r}."
    return None


def csv_rows_read(*, path: Path, columns: dict[str, str]) -> list[CsvRow]:
    """Every data row of the CSV, numbered from 2 (the header is row 1). Raises ``ImportInputError`` when the file
    cannot be read or lacks the URL column; optional columns absent from the header are ignored."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if columns["url"] not in header:
                raise ImportInputError(
                    f"The CSV has no column {columns['url']!r} (columns: {', '.join(header) or 'none'}); "
                    "map one with --columns url=<column>."
                )
            present = {key: column for key, column in columns.items() if column in header}
            rows = []
            for number, raw in enumerate(reader, start=2):
                values = {key: (raw.get(column) or "").strip() for key, column in present.items()}
                title, attribution = values.get("title", ""), values.get("attribution", "")
                if title and "attribution" not in present:
                    title, attribution = title_split(title)
                tags = [tag for tag in re.split(r"[|;,]", values.get("tags", "")) if tag.strip()]
                clean_raw = {str(key): value or "" for key, value in raw.items() if key is not None}
                rows.append(CsvRow(number=number, url=values["url"], link=values.get("link", ""), title=title,
                                   attribution=attribution, tags=tags, raw=clean_raw))  # fmt: skip
            return rows
    except FileNotFoundError as exc:
        raise ImportInputError(f"No such file: {path}.") from exc
    except (UnicodeDecodeError, csv.Error, IsADirectoryError, PermissionError) as exc:
        raise ImportInputError(f"Cannot read {path} as UTF-8 CSV ({exc}).") from exc


def csv_import_run(
    *,
    path: Path,
    columns: dict[str, str] | None = None,
    workers: int = 8,
    batch_size: int = 32,
    model_key: str | None = None,
    dry_run: bool = False,
    report_path: Path | None = None,
    stop: threading.Event | None = None,
    on_total: Callable[[int], None] | None = None,
    on_row: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Download, check and ingest every row not imported before (by source URL), in parallel.

    Resumable: rows whose URL is already a stored image's source are skipped, so re-running after an interruption
    or a fix only fetches what is missing. Failed rows go to a CSV report with their reason. ``dry_run`` parses
    and validates every row without any network or database write. Embedding is enqueued per ``batch_size``.
    """
    rows = csv_rows_read(path=path, columns=columns or dict(SEED_COLUMNS))
    summary = ImportSummary(total=len(rows))
    done = image_source_urls()
    todo: list[CsvRow] = []
    for row in rows:
        problem = url_problem(row.url)
        if problem:
            summary.fail({"row": str(row.number), **row.raw}, problem)
        elif row.url in done:
            summary.skipped += 1
        else:
            done.add(row.url)  # a URL repeated later in the file is skipped too
            todo.append(row)
    if dry_run:
        summary.created = len(todo)  # would be fetched
        report_write(summary=summary, path=report_path, name=path.stem)
        return summary
    if on_total:
        on_total(len(todo))
    batcher = EmbedBatcher(batch_size=batch_size, model_key=model_key)

    def work(row: CsvRow) -> PreparedImage:
        return image_prepare(data=fetch_url(row.url).data)

    def record(row: CsvRow, result: PreparedImage | Exception) -> None:
        outcome = "failed"
        if isinstance(result, PreparedImage):
            try:
                ingested = image_record(prepared=result, filename=urlsplit(row.url).path.rsplit("/", 1)[-1],
                                        source_url=row.url, source_link=row.link, title=row.title,
                                        attribution=row.attribution, tags=row.tags, enqueue=False)  # fmt: skip
            except DatabaseError as exc:
                summary.fail({"row": str(row.number), **row.raw}, f"Database error: {exc}")
            else:
                outcome = "created" if ingested.created else "existing"
                summary.created += ingested.created
                summary.existing += not ingested.created
                if ingested.created:
                    batcher.add(ingested.image.pk)
        else:
            reason = getattr(result, "message", "") or str(result)
            summary.fail({"row": str(row.number), **row.raw}, reason)
        if on_row:
            on_row(outcome)

    try:
        summary.interrupted = not pipeline_run(items=todo, work=work, record=record, workers=workers, stop=stop)
    finally:
        batcher.flush()
        report_write(summary=summary, path=report_path, name=path.stem)
    return summary

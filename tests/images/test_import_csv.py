"""The CSV importer: the seed file parses fully, downloads run in parallel against a local server, failures are
reported row by row, and a re-run after an interruption resumes without duplicates."""

from __future__ import annotations

import csv
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from images.models import Image
from images.services.csv_import import SEED_COLUMNS, csv_import_run, csv_rows_read, title_split
from tests.dispatched import embed_requests

from .pictures import picture_bytes
from .servers import local_server, send

# The seed lives in the shared folder beside the checkout (``../shared`` from the repository root), as in CI.
_SEED_CANDIDATES = [
    Path(__file__).resolve().parents[3] / "shared" / "seed" / "unsplash-data.csv",
    Path("/work/shared/seed/unsplash-data.csv"),
]
SEED = next((path for path in _SEED_CANDIDATES if path.exists()), _SEED_CANDIDATES[0])

pytestmark = pytest.mark.django_db


def embed_batches(callbacks) -> list[tuple[list[int], str | None]]:
    return embed_requests(callbacks)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_the_seed_csv_parses_fully():
    rows = csv_rows_read(path=SEED, columns=dict(SEED_COLUMNS))
    assert len(rows) == 25_000
    first = rows[0]
    assert (first.number, first.title, first.attribution) == (2, "Woman exploring a forest", "Michelle Spencer")
    assert first.link == "https://unsplash.com/photos/XMyPniM9LF0"
    assert first.url.startswith("https://images.unsplash.com/")
    assert all(row.url.startswith("https://images.unsplash.com/") for row in rows)
    assert all(row.attribution for row in rows)
    untitled = next(row for row in rows if not row.title)
    assert untitled.attribution
    assert "Photo by" not in untitled.attribution


def test_dry_run_on_the_whole_seed_file():
    out = StringIO()
    call_command("import_images", input_data=str(SEED), dry_run=True, stdout=out)
    # one URL appears twice in the seed: the repeat is skipped, not fetched twice
    assert out.getvalue().strip() == (
        "Dry run: 25,000 rows parsed; 24,999 would be fetched, 1 already imported or repeated, 0 invalid."
    )
    assert Image.objects.count() == 0


@pytest.mark.parametrize(
    ("tooltip", "expected"),
    [
        ('"Woman exploring a forest" by Michelle Spencer', ("Woman exploring a forest", "Michelle Spencer")),
        ('"Quote "inside" title" by A B', ('Quote "inside" title', "A B")),
        ("Photo by Mathias Bach Laursen", ("", "Mathias Bach Laursen")),
        ("Plain caption", ("Plain caption", "")),
        ("", ("", "")),
    ],
)
def test_tooltip_splits_into_title_and_attribution(tooltip, expected):
    assert title_split(tooltip) == expected


def _serving(data: bytes):
    return lambda handler: send(handler, data)


@pytest.fixture
def picture_server(settings):
    pictures = {f"/p{i}.png": picture_bytes("PNG", color=(i * 20, 0, 0)) for i in range(6)}
    routes = {path: _serving(data) for path, data in pictures.items()}
    routes["/copy-of-p0.png"] = routes["/p0.png"]
    routes["/page.html"] = lambda h: send(h, b"<html></html>", "text/html")
    with local_server(routes) as server:
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{server.port}"]
        yield server


def test_import_downloads_in_parallel_and_reports_every_failed_row(
    picture_server, tmp_path, django_capture_on_commit_callbacks
):
    url = picture_server.url
    rows = [[f"https://unsplash.com/photos/{i}", url(f"/p{i}.png"), f'"Picture {i}" by Author {i}'] for i in range(6)]
    rows += [
        ["https://unsplash.com/photos/copy", url("/copy-of-p0.png"), '"Copy" by Someone'],
        ["", url("/missing.png"), "missing"],
        ["", url("/page.html"), "a page"],
        ["", "not a url", "broken"],
        ["", url("/p1.png"), "repeated row"],
    ]
    source = write_csv(tmp_path / "data.csv", ["link", "path", "tooltip"], rows)
    report = tmp_path / "failed.csv"
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("import_images", input_data=str(source), workers=4, batch_size=4, report=str(report),
                     no_progress=True, stdout=out)  # fmt: skip
    # Then six distinct pictures are stored once each, with title and photographer split
    assert Image.objects.count() == 6
    p3 = Image.objects.get(source_url=url("/p3.png"))
    assert (p3.title, p3.attribution, p3.source_link) == ("Picture 3", "Author 3", "https://unsplash.com/photos/3")
    assert p3.original_filename == "p3.png"
    # the same bytes under another URL come back as the existing image
    assert "6 created, 1 already stored, 1 skipped (imported before), 3 failed" in out.getvalue()
    # embedding was requested in batches of at most four, for every created image
    batches = embed_batches(callbacks)
    assert all(len(ids) <= 4 for ids, _ in batches)
    assert sorted(i for ids, _ in batches for i in ids) == sorted(Image.objects.values_list("pk", flat=True))
    # and each failed row is in the report with its reason
    with report.open() as handle:
        failed = {row["path"]: row for row in csv.DictReader(handle)}
    assert failed[url("/missing.png")]["error"] == "The server answered HTTP 404."
    assert failed[url("/page.html")]["error"] == "The content type is 'text/html', not an image."
    assert failed["not a url"]["error"] == "Not an http(s) URL: 'not a url'."
    assert failed["not a url"]["row"] == "11"
    assert len(failed) == 3


def test_an_interrupted_import_resumes_without_duplicates(picture_server, tmp_path):
    rows = [["", picture_server.url(f"/p{i}.png"), f"Picture {i}"] for i in range(6)]
    source = write_csv(tmp_path / "data.csv", ["link", "path", "tooltip"], rows)
    stop = threading.Event()
    original_route = picture_server.routes["/p1.png"]

    def stop_after_serving(handler):
        original_route(handler)
        stop.set()  # as if Ctrl-C arrived while this row was downloading

    picture_server.routes["/p1.png"] = stop_after_serving
    first = csv_import_run(path=source, workers=1, stop=stop)
    assert first.interrupted is True
    imported_first = set(Image.objects.values_list("source_url", flat=True))
    assert 2 <= len(imported_first) < 6
    requests_before = len(picture_server.requests)
    # When the same import runs again
    second = csv_import_run(path=source, workers=2)
    # Then only the missing rows are fetched, and every row is stored exactly once
    assert second.interrupted is False
    fetched_again = picture_server.requests[requests_before:]
    assert sorted(fetched_again) == sorted(f"/p{i}.png" for i in range(6) if picture_server.url(f"/p{i}.png")
                                           not in imported_first)  # fmt: skip
    assert (second.created, second.skipped) == (6 - len(imported_first), len(imported_first))
    assert Image.objects.count() == 6
    assert Image.objects.values("source_url").distinct().count() == 6


def test_other_csv_layouts_through_a_column_mapping(picture_server, tmp_path, django_capture_on_commit_callbacks):
    from search.embeddings import model_key_for

    source = write_csv(
        tmp_path / "other.csv",
        ["image_url", "page", "caption", "credit", "keywords"],
        [[picture_server.url("/p2.png"), "https://example.org/2", '"Quoted" by nobody', "Jane", "red|square"]],
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("import_images", input_data=str(source), no_progress=True, stdout=StringIO(),
                     columns="url=image_url,link=page,title=caption,attribution=credit,tags=keywords",
                     model_id="openai/clip-vit-base-patch32")  # fmt: skip
    image = Image.objects.get()
    assert (image.title, image.attribution, image.tags) == ('"Quoted" by nobody', "Jane", ["red", "square"])
    assert image.source_link == "https://example.org/2"
    key = model_key_for("openai/clip-vit-base-patch32", None)
    assert embed_batches(callbacks) == [([image.pk], key)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_data": "/nonexistent/data.csv"}, "No such file: /nonexistent/data.csv."),
        ({"input_data": "CSV", "columns": "url"}, "Bad column mapping 'url': use FIELD=COLUMN"),
        ({"input_data": "CSV", "columns": "url=nope"}, "The CSV has no column 'nope' (columns: link, path, tooltip)"),
        ({"input_data": "CSV", "delete_missing": True}, "--delete-missing applies to --dir only."),
        ({"input_data": "CSV", "workers": 0}, "--batch-size and --workers must be at least 1."),
    ],
)
def test_command_errors_are_one_clear_line(options, message, tmp_path):
    source = write_csv(tmp_path / "data.csv", ["link", "path", "tooltip"], [["", "http://x/y.png", "t"]])
    options = {key: (str(source) if value == "CSV" else value) for key, value in options.items()}
    with pytest.raises(CommandError) as caught:
        call_command("import_images", no_progress=True, stdout=StringIO(), **options)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)

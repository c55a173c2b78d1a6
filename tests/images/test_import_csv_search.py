"""The seed's data end to end: rows of ``unsplash-data.csv`` (their pictures served from 127.0.0.1) are imported,
embedded with the toy model, and their titles and photographers are searchable in keyword and hybrid mode."""

from __future__ import annotations

import csv

import pytest

from images.models import Image
from images.services.csv_import import csv_import_run
from search.python_api import SemanticSearcher
from search.services.embedding import embedding_compute
from tests.search.test_search_fixtures import toy_model_use, toy_picture_bytes

from .servers import local_server, send
from .test_import_csv import SEED

pytestmark = pytest.mark.django_db
ROWS = 8


def _serving(data: bytes):
    return lambda handler: send(handler, data)


@pytest.fixture
def seed_rows(tmp_path, settings):
    """The first rows of the seed CSV, each picture URL replaced by a distinct toy picture on a local server."""
    with SEED.open(newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(ROWS), csv.DictReader(handle), strict=False)]
    kinds = ("circle", "square", "triangle", "star")
    pictures = {f"/seed/{n}.png": toy_picture_bytes(kind=kinds[n % 4], colour=("red", "blue")[n // 4], seed=n)
                for n in range(ROWS)}  # fmt: skip
    routes = {path: _serving(data) for path, data in pictures.items()}
    with local_server(routes) as server:
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{server.port}"]
        source = tmp_path / "seed.csv"
        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["link", "path", "tooltip"])
            writer.writeheader()
            for n, row in enumerate(rows):
                writer.writerow({**row, "path": server.url(f"/seed/{n}.png")})
        yield source, rows


def test_seed_titles_and_photographers_are_searchable(seed_rows, settings):
    source, rows = seed_rows
    assert rows[0]["tooltip"] == '"Woman exploring a forest" by Michelle Spencer'
    model_key = toy_model_use(settings)
    csv_import_run(path=source, workers=2, batch_size=4)
    assert Image.objects.count() == ROWS
    embedding_compute(image_ids=list(Image.objects.values_list("pk", flat=True)), model_key=model_key)
    forest = Image.objects.get(title="Woman exploring a forest")
    assert forest.attribution == "Michelle Spencer"
    searcher = SemanticSearcher()
    for mode in ("keyword", "hybrid"):
        hits = searcher.search("Michelle Spencer", k=3, mode=mode)
        assert hits[0].image.pk == forest.pk, mode
        assert hits[0].matches[0].field == "attribution"
        assert searcher.search("terrarium", k=1, mode=mode)[0].image.title == "Succulents in a terrarium"
        assert searcher.search('by:"Jeff Sheldon"', k=5, mode=mode)[0].image.attribution == "Jeff Sheldon"

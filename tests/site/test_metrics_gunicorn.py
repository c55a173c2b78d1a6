"""A production-shaped web server: gunicorn with several workers (gunicorn.conf.py), collected static files.

/metrics must report every worker's requests (prometheus_client multiprocess mode) and the catalogue gauges; static
files come pre-compressed from WhiteNoise; every line gunicorn and Django write is one JSON object.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from images.models import Image
from tests.conftest import ROOT
from tests.site.test_health import closed_port
from tests.site.test_metrics import REQUESTS, sample_value


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Host": "localhost", **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[dict]:
    """gunicorn, two workers, production settings, the test database; yields its URL and folders."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_FORMAT"}}
    env.update(
        DATABASE_URL=database_url(), SEMSEARCH_DATA_DIR=str(settings.DATA_DIR), STATIC_ROOT=str(tmp_path / "static"),
        LOG_FORMAT="json", SECRET_KEY="test-only-" + "k" * 50, PYTHONWARNINGS="ignore",
    )  # fmt: skip
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr
    port = closed_port()
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", GUNICORN_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"), SEMSEARCH_METRICS_REFRESH_SECONDS="0.5",
    )  # fmt: skip
    log = (tmp_path / "gunicorn.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "semsearch_site.wsgi"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    info = {"url": f"http://127.0.0.1:{port}", "static": tmp_path / "static", "prometheus": tmp_path / "prometheus",
            "log": tmp_path / "gunicorn.log", "answered": 0}  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(info["url"] + "/healthz")
                info["answered"] += 1
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, Path(info["log"]).read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.3)
        yield info
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_metrics_add_up_every_worker_and_include_the_catalogue(server):
    # Given a pending image in the catalogue
    digest = hashlib.sha256(b"gunicorn").hexdigest()
    Image.objects.create(content_hash=digest, original=f"originals/{digest}.png", width=2, height=2, format="PNG")

    # When twenty requests are spread over the workers (each a new connection)
    for _ in range(20):
        assert get(server["url"] + "/healthz")[0] == 200
    time.sleep(1.5)  # two refresh periods of the catalogue gauges
    status, _headers, body = get(server["url"] + "/metrics")

    # Then one scrape counts every request, whichever worker served it, and sees the image
    assert status == 200
    text = body.decode()
    assert sample_value(text, REQUESTS, view="healthz", method="GET") == server["answered"] + 20
    assert sample_value(text, "semsearch_images", status="pending") == 1
    pids = {path.stem.rsplit("_", 1)[-1] for path in server["prometheus"].glob("*.db")}
    assert len(pids) >= 2


def test_static_files_are_compressed_and_every_log_line_is_json(server):
    # Given collectstatic ran under production settings
    assert (server["static"] / "semsearch" / "app.css").is_file()
    assert (server["static"] / "admin" / "css" / "base.css.gz").is_file()

    # When a browser asks for a stylesheet and accepts gzip
    status, headers, _body = get(server["url"] + "/static/admin/css/base.css", **{"Accept-Encoding": "gzip"})

    # Then WhiteNoise serves the pre-compressed file with a cache lifetime
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("text/css")
    assert "max-age" in headers["Cache-Control"]

    # And each line the server logged parses as one JSON object, gunicorn's own included
    time.sleep(0.2)
    parsed = [json.loads(line) for line in server["log"].read_text().splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.error" for line in parsed)
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in parsed)

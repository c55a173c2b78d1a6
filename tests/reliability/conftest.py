"""Fixtures for the reliability suite: a private service-mode stack (its own PostgreSQL, Redis, gunicorn and Celery
worker), an HTTP client for it, background traffic, and a recorder whose figures end up in
``bench/results/faults.json`` (read by ``bench/reliability_report.py`` to write ``docs/reliability.md``)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.conftest import SERVICE_MODE, require_services

from .services import (
    ROOT,
    ManagedProcess,
    PrivatePostgres,
    PrivateRedis,
    app_env,
    free_port,
    make_tempdir,
    manage,
    start_web,
    start_worker,
)

FAULTS_REPORT = Path(os.environ.get("SEMSEARCH_FAULTS_REPORT", str(ROOT / "bench" / "results" / "faults.json")))


# --- HTTP -------------------------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Http:
    """A small thread-safe client for one base URL on 127.0.0.1 (urllib3; no retries, short timeouts)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30) -> None:
        assert base_url.startswith("http://127.0.0.1:"), "reliability traffic stays on loopback"
        self.base_url = base_url.rstrip("/")
        self.pool = urllib3.PoolManager(maxsize=16, retries=False, timeout=urllib3.Timeout(total=timeout))
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers.setdefault("Authorization", f"Token {self.token}")
        response = self.pool.request(method, self.base_url + path, headers=headers, **kwargs)
        return Reply(response.status, response.data, dict(response.headers))

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def upload(self, content: bytes, filename: str, title: str = "") -> Reply:
        """One multipart upload through the REST API (field ``files``, as the ingestion API names it)."""
        fields: dict[str, Any] = {"files": (filename, content, "image/png")}
        if title:
            fields["title"] = title
        return self.request("POST", "/api/v1/images/", fields=fields)


def uploaded_ids(reply: Reply) -> list[int]:
    """Image ids (created or already existing) in an upload reply."""
    body = reply.json()
    results = body.get("results", body) if isinstance(body, dict) else body
    ids = []
    for item in results if isinstance(results, list) else [results]:
        image = item.get("image") if isinstance(item.get("image"), dict) else item
        if item.get("status", "created") in {"created", "existing"} and image.get("id") is not None:
            ids.append(int(image["id"]))
    return ids


def hit_ids(reply: Reply) -> list[int]:
    """Image ids of a search reply's hits, best first."""
    body = reply.json()
    hits = body.get("results", body.get("hits", [])) if isinstance(body, dict) else body
    return [int(hit["image"]["id"] if isinstance(hit.get("image"), dict) else hit.get("id", hit.get("image_id")))
            for hit in hits]  # fmt: skip


# --- Background traffic -----------------------------------------------------------------------------------------
@dataclass
class Sample:
    at: float
    op: str
    status: int  # 0: no HTTP answer (connection refused/reset, timeout)
    detail: str
    seconds: float


@dataclass
class Traffic:
    """Threads that repeat operations until stopped, recording every outcome with its time."""

    operations: dict[str, Callable[[int], Reply]]
    threads_per_op: int = 1
    pause: float = 0.05
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _loop(self, op: str, call: Callable[[int], Reply]) -> None:
        n = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                reply = call(n)
                status, detail = reply.status, reply.text[:300]
            except Exception as exc:  # the traffic records failures; the test judges them
                status, detail = 0, f"{type(exc).__name__}: {exc}"[:300]
            self.samples.append(Sample(started, op, status, detail, time.monotonic() - started))
            n += 1
            self._stop.wait(self.pause)

    def __enter__(self) -> Traffic:
        for op, call in self.operations.items():
            for _ in range(self.threads_per_op):
                thread = threading.Thread(target=self._loop, args=(op, call), daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def between(self, start: float, end: float, op: str | None = None) -> list[Sample]:
        return [s for s in self.samples if start <= s.at < end and (op is None or s.op == op)]


# --- The private stack ------------------------------------------------------------------------------------------
@dataclass
class Stack:
    """A private service-mode deployment: PostgreSQL, Redis, gunicorn and one Celery worker, all restartable."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    data_dir: Path
    env: dict[str, str]
    port: int
    web: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    extra_workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_web(self) -> None:
        self.web = start_web(self.env, port=self.port)

    def start_worker(self, **kwargs: Any) -> ManagedProcess:
        """The stack's worker on every queue, with beat (so the periodic reconcile runs every 10 s)."""
        self.worker = start_worker(self.env, beat=True, **kwargs)
        return self.worker

    def manage(self, *args: str, timeout: float = 300) -> str:
        return manage(self.env, *args, timeout=timeout)

    def staff_token(self) -> str:
        """A token for a staff user, created on first use (idempotent)."""
        code = ("from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token;"
                "u, _ = get_user_model().objects.get_or_create(username='rel-staff', defaults={'is_staff': True});"
                "print(Token.objects.get_or_create(user=u)[0].key)")  # fmt: skip
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    def shell(self, code: str, timeout: float = 120) -> str:
        """Run Python ``code`` in a Django shell of the stack; return what it printed."""
        return self.manage("shell", "-c", code, timeout=timeout)

    def catalogue(self, image_ids: list[int]) -> dict[int, tuple[str, int]]:
        """``{id: (status, embedding count)}`` for these images, read straight from the stack's PostgreSQL."""
        import psycopg

        with psycopg.connect(self.postgres.url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT i.id, i.status, (SELECT count(*) FROM search_embedding e WHERE e.image_id = i.id) "
                "FROM images_image i WHERE i.id = ANY(%s)",
                (image_ids,),
            ).fetchall()
        return {int(pk): (status, int(count)) for pk, status, count in rows}

    def all_ready(self, image_ids: list[int]) -> bool:
        """Every one of these images exists, is ``ready`` and has exactly one embedding."""
        rows = self.catalogue(image_ids)
        return len(rows) == len(set(image_ids)) and all(row == ("ready", 1) for row in rows.values())

    def active_snapshot(self) -> tuple[int, str, str] | None:
        """(version, file path, checksum) of the newest snapshot row, or None."""
        import psycopg

        with psycopg.connect(self.postgres.url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT version, file_path, checksum FROM search_indexsnapshot "
                "ORDER BY created_at DESC, id DESC LIMIT 1"
            ).fetchone()
        return (int(row[0]), str(row[1]), str(row[2])) if row else None

    def index_build(self) -> dict[str, Any]:
        """``search.index.index_build(force=True)`` for the active model, run in a separate process."""
        code = ("import json; from search.index import index_build; "
                "from search.state import active_model_key; "
                "print('RESULT ' + json.dumps(index_build(model_key=active_model_key(), force=True)))")  # fmt: skip
        out = self.shell(code)
        return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])

    def web_errors(self, lines: int = 30) -> str:
        """The last error lines (tracebacks' last lines included) gunicorn logged, for failure messages."""
        log = self.web.log if self.web is not None else []
        picked = [line for line in log if "Error" in line or "Traceback" in line or "ERROR" in line]
        return "".join(picked[-lines:])

    def stop_all(self) -> None:
        for process in (self.web, self.worker, *self.extra_workers):
            if process is not None:
                process.stop(timeout=10)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """A migrated private stack with gunicorn and a worker on every queue (services pass only; needs root or the
    ``postgres`` user to run PostgreSQL)."""
    require_services()
    base = make_tempdir("semsearch-rel-")
    os.chmod(base, 0o755)  # the postgres user must reach its cluster folder inside
    postgres = PrivatePostgres(base / "postgres")
    redis = PrivateRedis(base / "redis")
    data_dir = base / "data"
    data_dir.mkdir()
    postgres.init()
    redis.start()
    env = app_env(
        database_url=postgres.url,
        redis_url=redis.url,
        data_dir=data_dir,
        extra={"SEMSEARCH_PENDING_REQUEUE_MINUTES": "1", "SEMSEARCH_RECONCILE_SECONDS": "10"},
    )
    deployment = Stack(postgres=postgres, redis=redis, data_dir=data_dir, env=env, port=free_port())
    try:
        deployment.manage("migrate", "--noinput")
        deployment.start_web()
        deployment.start_worker()
        yield deployment
    finally:
        deployment.stop_all()
        redis.stop()
        postgres.destroy()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_http(stack: Stack) -> Http:
    return Http(stack.base_url, token=stack.staff_token())


# --- Fault report -----------------------------------------------------------------------------------------------
class FaultReport:
    """Figures measured by fault tests, merged into ``bench/results/faults.json`` under this pass's name."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def record(self, test: str, **figures: Any) -> None:
        self.entries[test] = {**figures, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def write(self) -> None:
        if not self.entries:
            return
        test_pass = os.environ.get("SEMSEARCH_TEST_PASS") or ("services" if SERVICE_MODE else "embedded")
        existing: dict[str, Any] = {}
        if FAULTS_REPORT.exists():
            try:
                existing = json.loads(FAULTS_REPORT.read_text())
            except json.JSONDecodeError:
                existing = {}
        passes = existing.setdefault("passes", {})
        passes.setdefault(test_pass, {}).update(self.entries)
        FAULTS_REPORT.parent.mkdir(parents=True, exist_ok=True)
        FAULTS_REPORT.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    report = FaultReport()
    yield report
    report.write()


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.5, message: str = "") -> Any:
    """Poll ``condition`` until it returns a truthy value (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s: {message} (last value: {last!r})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failed test that used the private stack shows the end of the worker's and gunicorn's logs (what CI
    prints is all there is to go on when a fault test fails there)."""
    report: pytest.TestReport = yield
    deployment = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(deployment, Stack):
        for process in (deployment.worker, *deployment.extra_workers, deployment.web):
            if process is not None:
                report.sections.append((f"{process.name} log (last lines)", process.tail(80)))
    return report

"""Project-wide fixtures: which run mode this pass is in, and real Celery worker processes."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from core.queues import QUEUES

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SERVICE_MODE = bool(os.environ.get("DATABASE_URL")) and bool(os.environ.get("REDIS_URL"))


def require_services() -> None:
    """Skip outside service mode; in service mode a missing Redis is a failure, never a skip."""
    if not SERVICE_MODE:
        pytest.skip("service-mode test: runs in the services pass of `make test` (DATABASE_URL and REDIS_URL set)")
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2).ping()


@pytest.fixture(scope="session", autouse=True)
def _clean_broker() -> None:
    """Start the session with empty queues (a previous run may have left messages behind)."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    elif url.startswith("filesystem://"):
        for message in Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).glob("*.msg"):
            message.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _forget_active_model() -> Iterator[None]:
    """Each test resolves the active model afresh: the per-process cache (one second) must not leak between tests."""
    from search.state import active_model_key_forget

    active_model_key_forget()
    yield
    active_model_key_forget()


class WorkerProcess:
    """A real ``celery worker`` subprocess bound to the test database, media and index folders."""

    def __init__(self, queues: str, extra_env: dict[str, str]) -> None:
        self.queues = queues
        self.extra_env = extra_env
        self.process: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []

    def _env(self) -> dict[str, str]:
        db = connection.settings_dict
        env = dict(os.environ)
        if db["ENGINE"].endswith("sqlite3"):
            env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
        else:
            env["DATABASE_URL"] = (
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            )
        env.update({"SEMSEARCH_DATA_DIR": str(settings.DATA_DIR), "PYTHONUNBUFFERED": "1"}, **self.extra_env)
        return env

    def start(self, timeout: float = 60) -> None:
        command = [sys.executable, "-m", "celery", "-A", "semsearch_site", "worker", "--loglevel", "INFO",
                   "--queues", self.queues, "--concurrency", "1", "--pool", "prefork",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        self.wait_for("ready.", timeout)

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line)
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Block until a log line containing ``text`` appears (lines seen before this call count too)."""
        deadline = time.monotonic() + timeout
        for line in self.log:
            if text in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process is not None and self.process.poll() is not None:
                    break
                continue
            if text in line:
                return line
        raise AssertionError(f"worker never logged {text!r}; its log:\n{''.join(self.log[-60:])}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash or OOM-kill would."""
        assert self.process is not None
        subprocess.run(["pkill", "-KILL", "-P", str(self.process.pid)], check=False)
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[WorkerProcess]:
    """A started worker on every queue using the toy model; committed rows are visible to it."""
    worker = WorkerProcess(",".join(QUEUES), {"SEMSEARCH_MODEL_ID": "toy"})
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()

"""Private, disposable service processes for fault tests and the load benchmark.

Everything here runs on 127.0.0.1 on free ports, in temporary folders, and never touches the machine's shared
PostgreSQL (5432) or Redis (6379): a test that restarts a service restarts its own copy. Plain ``subprocess``, no
Django import, so ``bench/load.py`` can use it outside pytest.
"""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from core.queues import QUEUES

ROOT = Path(__file__).resolve().parents[2]
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, *, process: subprocess.Popen[str] | None = None) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:``port``; raise if ``process`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class ManagedProcess:
    """A subprocess whose combined output is kept (and searchable) so a failing test can show it."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self) -> ManagedProcess:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, so kill() reaches every child and nothing else
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        return self

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log.append(line)
            self._lines.put(line)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(self, text: str, timeout: float) -> str:
        """Block until a log line containing ``text`` appears (lines seen before count too)."""
        deadline = time.monotonic() + timeout
        for line in list(self.log):
            if text in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                if not self.alive:
                    break
                continue
            if text in line:
                return line
        raise AssertionError(f"{self.name} never logged {text!r}; its log:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "".join(self.log[-lines:])

    def kill(self) -> None:
        """SIGKILL the process group (the main process and every child), as a crash or an OOM kill would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds."""
        if not self.alive:
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class PrivateRedis:
    """A ``redis-server`` without persistence on a free loopback port; ``restart()`` loses every key, as a real
    restart of such a server does."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.server: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no", "--dir", str(self.workdir), "--daemonize", "no"]  # fmt: skip
        self.server = ManagedProcess("redis", command, dict(os.environ), cwd=self.workdir).start()
        wait_for_port(self.port, 20, process=self.server.process)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=10)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


def _pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (trust auth, fsync off) on a free loopback port.

    As root the cluster belongs to the ``postgres`` system user (PostgreSQL refuses to run as root).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.bin = _pg_bin()
        self.data = workdir / "data"
        self.sockets = workdir / "sockets"
        self.logfile = workdir / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/semsearch"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        """Create the cluster and the ``semsearch`` database (once)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            for path in (self.workdir, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8")  # fmt: skip
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "semsearch")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")  # fmt: skip
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects clients and shuts down cleanly; ``immediate`` is a crash (recovery on start)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


def app_env(
    *, database_url: str, redis_url: str, data_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a web or worker process of the app under test (service mode, toy model, no throttles)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SEMSEARCH_DATA_DIR": str(data_dir),
            # The bundled toy model; SEMSEARCH_RELIABILITY_MODEL_ID points the stack at another local model folder.
            "SEMSEARCH_MODEL_ID": os.environ.get("SEMSEARCH_RELIABILITY_MODEL_ID", "toy"),
            "SECRET_KEY": "reliability-tests-only-not-a-secret-0123456789abcdefghijklmnop",
            "DJANGO_SETTINGS_MODULE": "semsearch_site.settings",
            "DATABASE_CONNECT_TIMEOUT": "2",
            "THROTTLE_SEARCH": "1000000/min",
            "THROTTLE_UPLOAD": "1000000/min",
            "THROTTLE_READ": "1000000/min",
            "SEMSEARCH_TORCH_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "text",
        }
    )
    env.update(extra or {})
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run ``manage.py`` with ``env``; return its output, raise with it on failure."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def start_web(
    env: dict[str, str], *, port: int, workers: int = 1, threads: int = 4, timeout: float = 90
) -> ManagedProcess:
    """gunicorn serving the app on 127.0.0.1:``port``; returns once ``/healthz`` answers."""
    command = [sys.executable, "-m", "gunicorn", "semsearch_site.wsgi", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", str(threads), "--timeout", "120",
               "--graceful-timeout", "5"]  # fmt: skip
    web = ManagedProcess("gunicorn", command, env).start()
    wait_for_port(port, timeout, process=web.process)
    return web


def start_worker(env: dict[str, str], *, queues: str = ",".join(QUEUES), concurrency: int = 1,
                 timeout: float = 90, name: str = "worker", beat: bool = False,
                 app: str = "semsearch_site") -> ManagedProcess:  # fmt: skip
    """A real Celery worker (prefork) on ``queues`` (with the beat scheduler if ``beat``); returns once it logged
    ``ready.``."""
    command = [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel", "INFO", "--queues",
               queues, "--concurrency", str(concurrency), "--pool", "prefork", "--without-gossip",
               "--without-mingle", "--without-heartbeat", "-n", f"{name}-{os.getpid()}-{free_port()}@%h"]  # fmt: skip
    if beat:
        command += ["--beat", "--schedule", str(Path(env["SEMSEARCH_DATA_DIR"]) / f"beat-{name}")]
    worker = ManagedProcess(name, command, env).start()
    worker.wait_for("ready.", timeout)
    return worker


def make_tempdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def png_pictures(count: int, seed: int, size: int = 64) -> Iterable[tuple[bytes, str]]:
    """``count`` distinct toy-model pictures as (PNG bytes, caption), deterministic for ``seed``, drawn lazily."""
    from search.embeddings.toy_data import random_captioned_pictures

    for number in range(count):
        ((picture, caption, _),) = random_captioned_pictures(1, seed * 1_000_003 + number, size=size)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        yield buffer.getvalue(), caption

"""`make run`'s server: with no configuration at all, `manage.py serve` answers `/` and `/admin/` and runs a worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_serve_answers_home_and_admin_with_no_configuration(tmp_path):
    # Given an empty data folder and no service configured (the model id is the default hub model, offline here)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(SEMSEARCH_DATA_DIR=str(tmp_path))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    stdout = server.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    try:
        # When the server is up
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                time.sleep(0.5)
        # Then the search page and the admin login answer, and the page explains an unloadable model
        assert status == 200, body
        assert "semsearch" in body
        assert "SEMSEARCH_MODEL_ID" in body
        admin_status, admin_body = get(f"http://127.0.0.1:{port}/admin/login/")
        assert admin_status == 200
        assert "Django administration" in admin_body or "Log in" in admin_body
        # And a Celery worker starts beside the web server (it may come up after gunicorn on a busy machine)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("ready." in line for line in lines):
            time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        reader.join(timeout=10)
    output = "".join(lines)
    assert "celery@" in output or "ready." in output, output[-3000:]
    # And both stop cleanly
    assert server.returncode == 0, output[-3000:]

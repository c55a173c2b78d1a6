"""Structured logs: one JSON object per line with the request or task id, and timings."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from semsearch_site.celery import app
from semsearch_site.logging import RequestIdFilter, logging_config, request_id_var
from tests.conftest import ROOT


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above, formatted by the project's JSON formatter, into a buffer."""
    config = logging_config("json", "DEBUG")
    formatter = logging.config.DictConfigurator(config).configure_formatter(config["formatters"]["json"])
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def records(buffer: io.StringIO, logger: str) -> list[dict]:
    """Every line parsed as JSON (each must be one object), those from ``logger`` kept."""
    return [line for line in map(json.loads, buffer.getvalue().splitlines()) if line["logger"] == logger]


def test_request_line_is_json_with_request_id_and_duration(client, json_lines):
    # Given a client-supplied request id
    # When a request runs
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-42.a")

    # Then the response echoes it and the request's log line is one JSON object carrying it and the timing
    assert response["X-Request-ID"] == "req-42.a"
    [line] = records(json_lines, "semsearch.request")
    assert line["request_id"] == "req-42.a"
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "DEBUG"  # probes are quiet
    assert line["time"].endswith("+00:00")


def test_an_unsafe_request_id_is_replaced(client, json_lines):
    # Given a request id that would forge a log line
    # When a request runs
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc\tlevel=ERROR")

    # Then a generated id is used instead, in the response and the log
    generated = response["X-Request-ID"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert records(json_lines, "semsearch.request")[0]["request_id"] == generated


@app.task(name="tests.site.log_inside_task")
def log_inside_task() -> str:
    logging.getLogger("tests.task").info("working")
    return request_id_var.get()


def test_task_logs_carry_the_task_id_and_its_duration(json_lines):
    # Given the task-duration histogram's count for this task
    labels = {"task": "tests.site.log_inside_task", "state": "SUCCESS"}
    before = REGISTRY.get_sample_value("semsearch_task_seconds_count", labels) or 0

    # When a task runs (eagerly: the same signals fire as in a worker)
    result = log_inside_task.apply(task_id="task-7f3e")

    # Then lines logged inside it carry its id, a closing line has its duration, and the id is cleared afterwards
    assert result.get() == "task-7f3e"
    [inside] = records(json_lines, "tests.task")
    assert inside["request_id"] == "task-7f3e"
    [finished] = records(json_lines, "semsearch.task")
    assert finished["task"] == "tests.site.log_inside_task"
    assert finished["state"] == "SUCCESS"
    assert finished["duration_ms"] >= 0
    assert request_id_var.get() == "-"
    assert REGISTRY.get_sample_value("semsearch_task_seconds_count", labels) == before + 1


def test_service_mode_logs_json_by_default(tmp_path):
    # Given service-mode settings (DATABASE_URL set) and no LOG_FORMAT
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    env.update(SEMSEARCH_DATA_DIR=str(tmp_path), DATABASE_URL="postgres://postgres@127.0.0.1:5432/test")

    # When Django logs from a management command
    code = "import logging; logging.getLogger('ops').warning('disk %s full', '/data', extra={'free_mb': 12})"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    # Then stderr holds exactly one JSON object per line
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stderr.splitlines() if text.strip()]
    assert line["message"] == "disk /data full"
    assert line["level"] == "WARNING"
    assert line["logger"] == "ops"
    assert line["free_mb"] == 12
    assert line["request_id"] == "-"


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config("xml", "INFO")

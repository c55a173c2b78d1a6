"""Snapshot faults on a serving deployment: the active Faiss file truncated, corrupted, its folder deleted, or its
builder killed mid-write → searches keep answering (exact fallback), the index is rebuilt, nothing is lost.

The index's own tests cover the same faults at the function level (``tests/search/test_index*.py``,
``tests/workers/``); these run them against real gunicorn and worker processes while clients search. Services pass.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from search.index.storage import TEMP_MARKER

from .conftest import FaultReport, Http, Stack, Traffic, wait_until
from .services import ManagedProcess
from .test_redis_restart import findable, seed_images

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

QUERIES = ("a red circle", "two blue squares", "a yellow star at the top")


def _file(stack: Stack, relative: str) -> Path:
    return stack.data_dir / "index" / relative


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _damage(path: Path, fault: str) -> None:
    if fault == "truncate":
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    elif fault == "corrupt":
        with path.open("r+b") as handle:
            handle.seek(path.stat().st_size // 2)
            chunk = handle.read(64)
            handle.seek(path.stat().st_size // 2)
            handle.write(bytes(b ^ 0xFF for b in chunk))
    elif fault == "delete_folder":
        shutil.rmtree(path.parent)
    else:
        raise ValueError(fault)


def _searching(http: Http) -> Traffic:
    """Two clients searching, each request on a new connection.

    A reload (SIGHUP) retires gunicorn's old workers, which close their idle keep-alive connections; a request
    sent on such a connection at that instant is reset before the server read it. Browsers resend it (RFC 9112
    §9.3.1); this client does not retry anything, so it asks for ``Connection: close`` and every failure it
    records is one the server caused.
    """
    queries = itertools.cycle(QUERIES)
    headers = {"Connection": "close"}
    return Traffic(
        {"search": lambda n: http.get(f"/api/v1/search?q={quote_plus(next(queries))}&limit=5", headers=headers)},
        threads_per_op=2,
    )


def _healthy_rebuild(stack: Stack, older_than: int) -> tuple[int, str, str] | None:
    """The newest snapshot if it is newer than ``older_than`` and its file matches its checksum."""
    snapshot = stack.active_snapshot()
    if snapshot and snapshot[0] > older_than and _sha256(_file(stack, snapshot[1])) == snapshot[2]:
        return snapshot
    return None


@pytest.mark.parametrize("fault", ["truncate", "corrupt", "delete_folder"])
def test_damaged_snapshot_search_answers_throughout_and_index_is_rebuilt(
    stack: Stack, stack_http: Http, fault_report: FaultReport, fault: str
) -> None:
    # Given a serving deployment with an active snapshot and clients searching
    ids = seed_images(stack, stack_http)
    wait_until(lambda: stack.index_build()["status"] in ("built", "current"), 90, interval=2, message="no build")
    before = stack.active_snapshot()
    assert before is not None
    with _searching(stack_http) as traffic:
        time.sleep(1)
        # When the active file is damaged and the web workers restart (so they must read it from disk)
        damaged_at = time.monotonic()
        _damage(_file(stack, before[1]), fault)
        assert stack.web is not None
        assert stack.web.process is not None
        os.kill(stack.web.process.pid, signal.SIGHUP)
        # Then a new, intact version is built by itself (reader's rebuild request or the periodic reconcile)
        rebuilt = wait_until(lambda: _healthy_rebuild(stack, before[0]), 120, interval=1, message="no rebuild")
        rebuilt_after = time.monotonic() - damaged_at
        time.sleep(2)

    # And every search meanwhile answered 200, and every image is still findable
    failed = [s for s in traffic.samples if s.status != 200]
    assert traffic.samples, "no search ran"
    assert not failed, f"{len(failed)} of {len(traffic.samples)} searches failed, e.g. {failed[:3]}"
    assert all(findable(stack_http, pk) for pk in ids)
    fault_report.record(
        f"snapshot_{fault}",
        searches=len(traffic.samples),
        failed_searches=len(failed),
        rebuilt_version=rebuilt[0],
        seconds_until_rebuilt=round(rebuilt_after, 1),
        lost_images=0,
    )


def test_builder_killed_mid_write_leaves_previous_version_active(
    stack: Stack, stack_http: Http, fault_report: FaultReport
) -> None:
    # Given a serving deployment with an intact active snapshot
    ids = seed_images(stack, stack_http)
    before = wait_until(lambda: _healthy_rebuild(stack, 0), 120, interval=2, message="no intact snapshot")
    # When a builder process is SIGKILLed after writing the first bytes of a new version
    code = (
        "import time, search.index.storage as st\n"
        "real = st._write_chunk\n"
        "def slow(handle, hasher, data):\n"
        "    real(handle, hasher, data); print('WRITING', flush=True); time.sleep(120)\n"
        "st._write_chunk = slow\n"
        "from search.index import index_build\n"
        "from search.state import active_model_key\n"
        "index_build(model_key=active_model_key(), force=True)\n"
    )
    builder = ManagedProcess("builder", [sys.executable, "manage.py", "shell", "-c", code], stack.env).start()
    with _searching(stack_http) as traffic:
        builder.wait_for("WRITING", 120)
        builder.kill()
        killed_at = time.monotonic()
        time.sleep(3)
        # Then the previous version is still the active one and intact, and searches answered throughout
        assert stack.active_snapshot() == before
        assert _sha256(_file(stack, before[1])) == before[2]
    failed = [s for s in traffic.samples if s.status != 200]
    assert not failed, failed[:3]
    assert all(findable(stack_http, pk) for pk in ids)
    # And the dead builder's lock frees itself, so the next build succeeds and cleans up its temporary file
    wait_until(lambda: stack.index_build()["status"] == "built", 120, interval=3, message="lock never freed")
    lock_freed_after = time.monotonic() - killed_at
    after = _healthy_rebuild(stack, before[0])
    assert after is not None
    leftovers = [p.name for p in _file(stack, after[1]).parent.iterdir() if TEMP_MARKER in p.name]
    assert not leftovers, leftovers
    fault_report.record(
        "snapshot_builder_killed_mid_write",
        searches=len(traffic.samples),
        failed_searches=len(failed),
        seconds_until_lock_freed=round(lock_freed_after, 1),
        lost_images=0,
    )

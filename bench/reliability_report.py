"""Write ``docs/reliability.md`` from measured output: ``bench/results/faults.json`` (written by the reliability
tests, ``tests/reliability``) and ``bench/results/load.json`` (written by ``bench/load.py``).

    .venv/bin/python bench/reliability_report.py           # rewrite docs/reliability.md
    .venv/bin/python bench/reliability_report.py --check   # exit 1 if the file is not what the data gives

The promises and the tests that prove them are listed here, next to the code that renders them; every figure comes
from the JSON files, so rerunning the tests and the benchmark and then this script refreshes the document.
Tests elsewhere that cover the same faults at the function level are found by scanning ``tests/`` for their names.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "reliability.md"

# (promise, tests proving it, fault-report keys whose figures are quoted)
PROMISES: list[tuple[str, list[str], list[str]]] = [
    (
        "A worker killed with SIGKILL in the middle of a batch of 200 uploads loses nothing: after a restart every "
        "image is `ready` with exactly one embedding and findable.",
        ["test_worker_kill.py::test_worker_sigkill_mid_batch_of_200_uploads_loses_nothing"],
        ["worker_sigkill_200_uploads"],
    ),
    (
        "A Redis restart (broker and cache, no persistence) while uploads and searches run loses no upload; searches "
        "keep answering; queued work lost with Redis is re-queued by the periodic reconcile.",
        ["test_redis_restart.py::test_redis_restart_loses_no_upload_and_search_keeps_answering",
         "test_cache_outage.py::test_reads_miss_and_writes_are_skipped_while_redis_is_down",
         "test_cache_outage.py::test_throttled_api_answers_while_the_cache_is_down"],
        ["redis_restart"],
    ),
    (
        "A worker whose broker goes away while it runs a task (its message unacknowledged) finishes the task, "
        "reconnects by itself and takes the next one; it never exits.",
        ["test_broker_loss_mid_task.py::test_worker_survives_broker_loss_while_a_task_runs"],
        ["broker_loss_mid_task"],
    ),
    (
        "While PostgreSQL is down, requests fail cleanly (503 with a message and `Retry-After`), never a 500 or a "
        "dropped connection; afterwards the same processes recover by themselves.",
        ["test_database_restart.py::test_postgres_restart_gives_503_with_message_then_recovers_by_itself[fast]",
         "test_database_restart.py::test_postgres_restart_gives_503_with_message_then_recovers_by_itself[immediate]"],
        ["postgres_restart_fast", "postgres_restart_immediate"],
    ),
    (
        "A truncated, corrupted or deleted snapshot never stops search (exact fallback over the stored vectors); "
        "a new intact version is built by itself; nothing is lost.",
        ["test_snapshot_faults.py::test_damaged_snapshot_search_answers_throughout_and_index_is_rebuilt"],
        ["snapshot_truncate", "snapshot_corrupt", "snapshot_delete_folder"],
    ),
    (
        "A builder killed while writing a snapshot leaves the previous version active and intact; its lock frees "
        "itself and the next build cleans up the partial file.",
        ["test_snapshot_faults.py::test_builder_killed_mid_write_leaves_previous_version_active"],
        ["snapshot_builder_killed_mid_write"],
    ),
    (
        "A task that outlives the broker's visibility timeout is redelivered, but never runs twice at the same time "
        "(single-flight lock).",
        ["test_visibility_timeout.py::test_task_outliving_visibility_timeout_never_runs_twice_at_once"],
        ["visibility_timeout_redelivery"],
    ),
    (
        "Deleting an image while a worker stores its embedding waits for the worker and cascades (no 500, no "
        "orphaned vector).",
        ["test_delete_race.py::test_delete_during_embedding_store_cascades_instead_of_failing"],
        [],
    ),
    (
        "No input to any REST operation produces a server error (schema fuzzing as staff, so uploads and deletes "
        "are exercised); every error has the one documented shape and status, and real responses match the schema.",
        ["test_schema_fuzz.py::test_no_input_produces_a_server_error",
         "test_api_contract.py::test_every_error_of_every_operation_has_the_documented_shape",
         "test_api_contract.py::test_throttled_requests_have_the_error_shape_and_retry_after",
         "test_api_contract.py::test_real_search_similar_and_status_responses_match_their_documented_schemas"],
        ["schema_fuzz"],
    ),
    (
        "Reads are public unless `SEMSEARCH_SEARCH_PUBLIC=false`, which closes every read (search, similar, image "
        "list and detail, status, media, pages; `/healthz` stays open); changing the catalogue needs the "
        "add/delete permission or staff; a refused write changes nothing; session writes need the CSRF token; "
        "tokens need no CSRF token; a wrong, malformed or revoked token is a 401.",
        ["test_authorization.py::test_matrix_reads_public_writes_need_permission",
         "test_authorization.py::test_private_reading_needs_authentication",
         "test_authorization.py::test_pages_and_media_follow_the_privacy_setting[True]",
         "test_authorization.py::test_pages_and_media_follow_the_privacy_setting[False]",
         "test_authorization.py::test_pages_answer_anonymous_readers",
         "test_authorization.py::test_session_writes_need_csrf_token",
         "test_authorization.py::test_token_writes_need_no_csrf_and_bad_tokens_are_401",
         "test_authorization.py::test_every_promised_endpoint_exists"],
        ["authorization_matrix"],
    ),
]  # fmt: skip

# Defects these tests and the load benchmark found, each fixed in its own commit (subject quoted) with the test
# that now guards it.
FOUND: list[tuple[str, str, str]] = [
    (
        "While Redis restarted, every throttled API request (search, status, image list and upload) answered 500: "
        "DRF's throttling reads the cache, and Django's Redis cache raises on a refused connection.",
        "test_redis_restart.py::test_redis_restart_loses_no_upload_and_search_keeps_answering",
        "Fix: a Redis outage no longer turns every API request into a 500",
    ),
    (
        "An upload while the broker was down was stored but answered 500: Django logs a failing robust on_commit "
        "callback by `__qualname__`, which the `functools.partial` used to enqueue embedding lacks.",
        "test_redis_restart.py::test_redis_restart_loses_no_upload_and_search_keeps_answering",
        "Fix: an upload while the broker is down is stored and answered, not a 500",
    ),
    (
        "Deleting an image while a worker stored its embedding failed at commit on the foreign key (a 500 on "
        "`DELETE /api/v1/images/{id}`, about 1 delete in 100 under mixed load).",
        "test_delete_race.py::test_delete_during_embedding_store_cascades_instead_of_failing (found by bench/load.py)",
        "Fix: deleting an image while a worker stores its embedding no longer fails with a 500",
    ),
    (
        "A Redis restart while a worker held an unacknowledged message stopped the worker for good (`Unrecoverable "
        "error: AttributeError` in kombu 5.7's Redis transport, closing a connection Celery 5.7 had already "
        "collected); every later upload stayed `pending` and no damaged snapshot was rebuilt (CI, 2026-11-27).",
        "tests/site/test_broker.py::test_our_transport_lets_celery_reconnect (found by CI; reproduced by "
        "restarting Redis and PostgreSQL 30 times under traffic)",
        "Fix: a Redis restart while a task runs no longer stops the worker for good",
    ),
]

# Words that mark a test elsewhere in the suite as covering one of these faults at the function level.
RELATED_WORDS = ("kill", "corrupt", "truncat", "missing_snapshot", "redeliver", "visibility", "crash", "sigkill")


def load(name: str) -> dict[str, Any]:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else {}


def fault_entries(faults: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every recorded figure set by key, with the test pass that measured it (services preferred)."""
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    passes = faults.get("passes", {})
    for test_pass in sorted(passes, key=lambda name: name != "services"):
        for key, figures in passes[test_pass].items():
            entries.setdefault(key, (test_pass, figures))
    return entries


def related_tests() -> list[str]:
    """Index and worker tests (outside ``tests/reliability``) whose names say they cover a crash or damage case."""
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        # The index's and the workers' own tests (not the embedding engine, whose "truncated" means long text).
        if not (path.name.startswith("test_index") or "workers" in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            is_test = isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            if is_test and any(word in node.name for word in RELATED_WORDS):
                found.append(f"`{path.relative_to(ROOT)}::{node.name}`")
    return found


def figures_text(figures: dict[str, Any]) -> str:
    shown = {k: v for k, v in figures.items() if k not in ("recorded_at", "examples_per_operation", "statuses")}
    return ", ".join(f"{k.replace('_', ' ')} **{v}**" for k, v in shown.items())


def render(faults: dict[str, Any], load_result: dict[str, Any]) -> str:
    entries = fault_entries(faults)
    lines = [
        "# Reliability and security",
        "",
        "<!-- Generated by bench/reliability_report.py from bench/results/faults.json and bench/results/load.json;"
        " do not edit by hand. -->",
        "",
        "What semsearch promises about losing data, staying up and refusing strangers, the test that proves each",
        "promise, and the figures measured the last time they ran. Fault tests run real processes: a private",
        "PostgreSQL cluster and Redis on free loopback ports (never the shared ones), gunicorn and Celery workers,",
        "started and killed by the tests (`tests/reliability/services.py`). They carry the `faults` marker and run",
        "in the services pass of `make test` (CI included); the fuzzing, authorisation and cache-outage tests run",
        "in both passes. The private stack uses the bundled toy model (`SEMSEARCH_RELIABILITY_MODEL_ID` points it at",
        "another local model folder).",
        "",
        "## Promises",
        "",
        "| # | Promise | Proved by (`tests/reliability/…`) | Last measured |",
        "|---|---|---|---|",
    ]
    for number, (promise, tests, keys) in enumerate(PROMISES, 1):
        measured = []
        for key in keys:
            if key in entries:
                test_pass, figures = entries[key]
                measured.append(f"{key} ({test_pass} pass, {figures.get('recorded_at', '?')}): {figures_text(figures)}")
            else:
                measured.append(f"{key}: not measured yet")
        measured = measured or ["pass/fail only (no figures)"]
        tests_cell = "<br>".join(f"`{t}`" for t in tests)
        lines.append(f"| {number} | {promise} | {tests_cell} | {'<br>'.join(measured)} |")
    lines += ["", "## Load", ""]
    lines += render_load(load_result)
    fuzz = entries.get("schema_fuzz")
    lines += ["", "## Schema fuzzing", ""]
    if fuzz:
        figures = fuzz[1]
        lines += [
            f"schemathesis generated **{figures['examples']}** requests over **{figures['operations']}** operations "
            f"of the generated OpenAPI schema (in-process WSGI app, staff token, derandomised); server errors: "
            f"**{figures['server_errors']}**.",
            "",
            "| Operation | Requests |",
            "|---|---|",
            *[f"| `{op}` | {n} |" for op, n in figures.get("examples_per_operation", {}).items()],
            "",
            "Statuses returned: " + ", ".join(f"{code}: {n}" for code, n in figures.get("statuses", {}).items()),
        ]
    else:
        lines.append("Not measured yet: run `tests/reliability/test_schema_fuzz.py`.")
    matrix = entries.get("authorization_matrix")
    lines += ["", "## Authorisation matrix", ""]
    if matrix:
        figures = matrix[1]
        lines += [
            f"{figures['operations']} operations discovered from the schema × 4 roles = **{figures['calls']}** calls; "
            f"writes refused: **{figures['refused_writes']}**, refused writes that changed anything: "
            f"**{figures['refused_writes_that_changed_data']}**, server errors: **{figures['server_errors']}**.",
            "",
            "| Operation | anonymous | user | editor (add/delete perm) | staff |",
            "|---|---|---|---|---|",
            *[f"| `{op}` | " + " | ".join(str(row[role]) for role in ("anonymous", "user", "editor", "staff")) + " |"
              for op, row in figures.get("statuses", {}).items()],
        ]  # fmt: skip
    else:
        lines.append("Not measured yet: run `tests/reliability/test_authorization.py`.")
    lines += ["", "## Defects found", "", "| Defect | Guarded by | Fix (commit subject) |", "|---|---|---|"]
    lines += [f"| {defect} | `{test}` | {fix} |" for defect, test, fix in FOUND]
    related = related_tests()
    lines += ["", "## Also covered at the function level", ""]
    lines += [f"- {name}" for name in related] if related else ["- (none found)"]
    lines += [
        "",
        "## Regenerate",
        "",
        "```bash",
        "bash scripts/test.sh tests/reliability     # both passes; the fault figures land in bench/results/faults.json",
        ".venv/bin/python bench/load.py             # 3 minutes of load, alone on the machine",
        ".venv/bin/python bench/reliability_report.py",
        "```",
        "",
    ]
    return "\n".join(lines)


def render_load(result: dict[str, Any]) -> list[str]:
    if not result:
        return ["Not measured yet: run `.venv/bin/python bench/load.py`."]
    config = result["config"]
    check = result["consistency"]
    lines = [
        f"`bench/load.py` ({result['created_at']}, {result['machine']['cpus']} CPUs): {config['clients']} concurrent "
        f"clients for {config['duration_s']:.0f} s against gunicorn ({config['web_workers']} workers × "
        f"{config['threads']} threads) and one Celery worker in service mode, toy model, mix {config['mix']}.",
        "",
        "| Operation | Requests | req/s | p50 ms | p99 ms | 5xx / dropped | 4xx |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, op in result["operations"].items():
        lines.append(f"| {name} | {op['count']} | {op['rps']} | {op['p50_ms']} | {op['p99_ms']} | "
                     f"{op['server_errors']} | {op['client_errors']} |")  # fmt: skip
    lines += [
        f"| **all** | {result['requests']} | {result['rps']} | | | {result['server_errors']} | "
        f"{result['client_errors']} |",
        "",
        f"Consistency afterwards: {check['kept_images']} images kept, {check['deleted_images']} deleted; every kept "
        f"one present, `ready` with exactly one embedding and findable, every deleted one gone, except "
        f"**{check['lost_images']}** (worker drained in {check['drain_seconds']} s).",
        "",
        "| Target | Value | Target | Met |",
        "|---|---|---|---|",
    ]
    for name, target in result["targets"].items():
        met = "yes" if target["value"] <= target["target"] else "**no**"
        lines.append(f"| `{name}` | {target['value']} | {target['op']} {target['target']} | {met} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if docs/reliability.md is out of date")
    args = parser.parse_args()
    text = render(load("faults.json"), load("load.json"))
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print("docs/reliability.md is out of date: run .venv/bin/python bench/reliability_report.py")
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

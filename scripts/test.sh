#!/usr/bin/env bash
# The whole suite, twice: once on the embedded default (SQLite + filesystem broker), once in service mode
# (PostgreSQL + Redis + real Celery worker processes). Extra arguments go to pytest in both passes.
# HF_HUB_OFFLINE: tests never contact the model hub (traffic leaves 127.0.0.0/8 only in real use).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DATA_ROOT="${SEMSEARCH_TEST_DATA:-$PWD/.pytest-data}"

run_pass() {
  local name=$1; shift
  rm -rf "$DATA_ROOT/$name"
  mkdir -p "$DATA_ROOT/$name"
  echo "=== test pass: $name ==="
  env "$@" HF_HUB_OFFLINE=1 SEMSEARCH_DATA_DIR="$DATA_ROOT/$name" SEMSEARCH_TEST_PASS="$name" \
    "$PY" -m pytest -p no:cacheprovider "${PYTEST_ARGS[@]}"
}

PYTEST_ARGS=("$@")
run_pass embedded -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL
run_pass services \
  DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}" \
  REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

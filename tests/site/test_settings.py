"""Both run modes boot, production settings pass Django's deploy checks, and migrations are complete."""

from __future__ import annotations

import os
import subprocess
import sys

from django.core.management import call_command

from tests.conftest import ROOT

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7#kP2!vQ9zL4@mN8$wR5^tY1&uI6*oE3(aS0)dF-gH_jK+lZ=cX~bV",
    "ALLOWED_HOSTS": "search.example.org",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
}


def run_manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    clean.update({"SEMSEARCH_DATA_DIR": str(tmp_path)}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_embedded_default_boots_with_nothing_configured(tmp_path):
    # Given no configuration at all, when Django checks and describes its settings
    result = run_manage("shell", "--no-imports", "-c", SHOW_MODE, env={}, tmp_path=tmp_path)

    # Then it uses SQLite and the filesystem broker inside the data folder
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "locmem", str(tmp_path)]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_service_mode_boots_with_postgres_and_redis(tmp_path):
    # Given DATABASE_URL and REDIS_URL
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "REDIS_URL": "redis://127.0.0.1:6379/3"}

    # When Django describes its settings
    result = run_manage("shell", "--no-imports", "-c", SHOW_MODE, env=env, tmp_path=tmp_path)

    # Then PostgreSQL (psycopg 3, health-checked persistent connections) and Redis are used
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/3", "redis",
                                     str(tmp_path)]  # fmt: skip


SHOW_MODE = (
    "from django.conf import settings as s; from django.utils.module_loading import import_string; "
    "from django.core.cache.backends.redis import RedisCache; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, "
    "'redis' if issubclass(import_string(s.CACHES['default']['BACKEND']), RedisCache) else 'locmem', "
    "s.DATA_DIR)"
)


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV, tmp_path=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_debug_mode(tmp_path):
    # The same check is not vacuous: DEBUG on is reported.
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION_ENV, "DEBUG": "true"}, tmp_path=tmp_path
    )

    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr


def test_migrations_are_complete(db):
    # makemigrations --check exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_celery_is_configured_for_safe_delivery():
    from semsearch_site.celery import app

    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit > conf.task_soft_time_limit > 0
    assert conf.task_routes["workers.tasks.embed_*"] == {"queue": "embed"}
    assert conf.task_routes["workers.tasks.index_*"] == {"queue": "index"}
    assert "workers.tasks.fetch_*" not in conf.task_routes  # URL fetches run on a bounded in-process pool


def _python(code: str, *, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY"}
    }
    clean.update({"SEMSEARCH_DATA_DIR": str(tmp_path / "data"), "DJANGO_SETTINGS_MODULE": "semsearch_site.settings"})
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


READ_SETTINGS = "from django.conf import settings; print(settings.MEDIA_ROOT)"


def test_importing_settings_creates_nothing(tmp_path):
    # Given a data folder that does not exist and a configured secret key
    # When the settings are read by a plain import (not through an entry point)
    result = _python(READ_SETTINGS, env={"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]}, tmp_path=tmp_path)
    # Then they load, and no folder or file was created
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data").exists()


def test_without_a_key_settings_say_how_to_get_one_and_an_entry_point_creates_it(tmp_path):
    # Given no secret key anywhere, a plain import refuses with a sentence that says what to do
    refused = _python(READ_SETTINGS, env={}, tmp_path=tmp_path)
    assert refused.returncode != 0
    assert "No SECRET_KEY is set" in refused.stderr
    assert "manage.py" in refused.stderr
    assert not (tmp_path / "data").exists()
    # When a process starts through an entry point (manage.py), the folders and the key are created once
    started = run_manage("check", env={}, tmp_path=tmp_path / "data")
    assert started.returncode == 0, started.stderr
    key = (tmp_path / "data" / "secret_key").read_text()
    assert {p.name for p in (tmp_path / "data").iterdir()} >= {"media", "index", "broker", "secret_key"}
    assert run_manage("check", env={}, tmp_path=tmp_path / "data").returncode == 0
    assert (tmp_path / "data" / "secret_key").read_text() == key  # kept, not regenerated

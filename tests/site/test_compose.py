"""docker-compose.yml validates, wires the services as documented, and .env.example documents every variable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

APP_SERVICES = ("migrate", "web", "worker-embed", "worker", "beat")


def compose_command() -> list[str]:
    """The Compose v2 plugin, else Debian's docker-compose (what .ci/run installs); never a skip."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, "docker compose is needed to validate docker-compose.yml: apt-get install docker-compose"
    return [legacy]


@pytest.fixture(scope="module")
def compose() -> dict:
    """``config`` output (interpolated, anchors resolved) with .env.example as the .env file."""
    env = {**os.environ, "SEMSEARCH_ENV_FILE": ".env.example"}
    command = [*compose_command(), "--env-file", ".env.example", "config"]
    quiet = subprocess.run([*command, "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    full = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    return yaml.safe_load(full.stdout)


def test_every_service_and_named_volume_exists(compose):
    assert set(compose["services"]) == {"postgres", "redis", *APP_SERVICES}
    assert set(compose["volumes"]) >= {"postgres-data", "storage", "model-cache"}


def test_infrastructure_has_health_checks(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def test_app_services_wait_for_healthy_dependencies_and_migrations(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker-embed", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_app_services_share_storage_and_model_cache_and_use_the_services(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        mounts = {
            (v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2]) for v in service["volumes"]
        }
        assert ("storage", environment["SEMSEARCH_STORAGE_ROOT"]) in mounts, name
        assert ("model-cache", environment["HF_HOME"]) in mounts, name
        assert environment["DATABASE_URL"].startswith("postgres://semsearch:change-me@postgres:5432/"), name
        assert environment["REDIS_URL"] == "redis://redis:6379/0", name


def test_workers_consume_the_documented_queues(compose):
    services = compose["services"]
    embed = " ".join(services["worker-embed"]["command"])
    other = " ".join(services["worker"]["command"])
    assert "--queues embed " in embed
    assert "nproc" in embed  # pool sized to the cores by default
    assert "--queues index,enrich,default " in other
    assert "gunicorn.conf.py" in services["web"]["command"]
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]


def test_env_example_documents_every_variable_the_project_reads():
    # Given every variable settings.py and gunicorn.conf.py read, and the ones compose interpolates
    settings_text = (ROOT / "semsearch_site" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', settings_text))
    read |= set(re.findall(r'"([A-Z0-9_]+)" in env', settings_text))
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', (ROOT / "gunicorn.conf.py").read_text()))
    read |= set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert len(read) > 50

    # When .env.example is read (set or commented out, each with its default)
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))

    # Then none is missing
    assert read - documented == set()


def test_web_health_check_is_valid_python_that_targets_healthz(compose):
    # Given the web health check as compose will run it
    test = compose["services"]["web"]["healthcheck"]["test"]

    # Then it runs the image's Python on a snippet that compiles and probes /healthz with a Host header
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "<healthcheck>", "exec")
    assert "http://127.0.0.1:8000/healthz" in test[3]
    assert "'Host'" in test[3]

"""/healthz and /readyz: liveness never touches dependencies; readiness names the part that is not ready."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.db import connection

from semsearch_site import health


@pytest.fixture
def model_and_index_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model and index checks belong to the encoder and index; these tests are about the endpoint."""
    monkeypatch.setitem(health.READINESS_CHECKS, "model", lambda: None)
    monkeypatch.setitem(health.READINESS_CHECKS, "index", lambda: None)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable_database() -> Iterator[None]:
    """Point the default connection at a database that cannot be opened, then restore it."""
    original = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-folder/semsearch.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)


def test_healthz_answers_without_touching_dependencies(client, settings):
    # Given a broker that does not answer, and no database access allowed (no db mark: a query would raise)
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    # When the liveness probe is called
    response = client.get("/healthz")

    # Then it is alive and uncached
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_200_when_every_part_is_ready(client, model_and_index_ready):
    # Given a reachable database and broker (this pass's real ones)
    # When readiness is asked
    response = client.get("/readyz")

    # Then every part reports ready
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ready"] is True
    assert body["checks"] == {name: {"ready": True} for name in ("database", "broker", "model", "index")}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker(client, settings, model_and_index_ready):
    # Given a broker URL pointing at a closed port
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    # When readiness is asked
    response = client.get("/readyz")

    # Then it is 503 and only the broker is named, with why
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ready"] is False
    assert "Redis" in checks["broker"]["reason"]
    assert checks["database"] == {"ready": True}


@pytest.mark.django_db
def test_readyz_names_a_missing_broker_folder(client, settings, tmp_path, model_and_index_ready):
    # Given the embedded default's folder broker whose folder is gone
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone")}

    # When readiness is asked
    response = client.get("/readyz")

    # Then the broker is not ready and the folder is named
    assert response.status_code == 503
    assert str(tmp_path / "gone") in response.json()["checks"]["broker"]["reason"]


@pytest.mark.django_db(transaction=True)
def test_readyz_names_an_unreachable_database(client, unreachable_database, model_and_index_ready):
    # Given a database that cannot be reached
    # When readiness is asked
    response = client.get("/readyz")

    # Then it is 503 (not a 500) and the database is named with the driver's error
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ready"] is False
    assert checks["database"]["reason"].startswith("OperationalError")
    assert checks["broker"] == {"ready": True}


@pytest.mark.django_db
def test_readyz_reports_a_model_that_is_not_loaded(client, monkeypatch, model_and_index_ready):
    # Given an encoder that failed to load
    import search.selectors

    status = {"model_id": "x", "model_key": None, "loaded": False, "error": "Set SEMSEARCH_MODEL_ID to a model."}
    monkeypatch.setattr(search.selectors, "encoder_status", lambda model_id=None, revision=None: status)
    monkeypatch.setitem(health.READINESS_CHECKS, "model", health._check_model)

    # When readiness is asked
    response = client.get("/readyz")

    # Then the model check carries the encoder's own sentence
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == {"ready": False, "reason": "Set SEMSEARCH_MODEL_ID to a model."}


@pytest.mark.django_db
def test_readyz_never_raises_when_a_check_does(client, monkeypatch, model_and_index_ready):
    # Given an index check that blows up
    def broken() -> str | None:
        raise RuntimeError("snapshot file is corrupt")

    monkeypatch.setitem(health.READINESS_CHECKS, "index", broken)

    # When readiness is asked
    response = client.get("/readyz")

    # Then the failure becomes that check's reason, in a 503
    assert response.status_code == 503
    assert response.json()["checks"]["index"] == {"ready": False, "reason": "RuntimeError: snapshot file is corrupt"}


def test_probes_are_exempt_from_the_https_redirect(client, settings):
    # Given production's HTTPS redirect
    settings.SECURE_SSL_REDIRECT = True

    # When a probe arrives over plain HTTP, and so does a page
    probe = client.get("/healthz")
    page = client.get("/api/docs/")

    # Then the probe is answered and the page is redirected
    assert probe.status_code == 200
    assert page.status_code == 301

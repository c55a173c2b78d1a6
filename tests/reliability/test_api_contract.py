"""The API keeps its word: every error any operation answers has the one documented shape (``{"detail", "code"}``,
plus ``fields`` for validation errors) and a documented status, throttling included (with ``Retry-After``), and
real search, similar and status responses match their documented schemas. Operations come from the generated
schema, walked in-process (the WSGI app) with schemathesis."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from semsearch_site.wsgi import application

from .in_process import in_process_app
from .test_authorization import new_image

ERROR_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
_errors: Counter[int] = Counter()


@pytest.fixture(autouse=True)
def _in_process_app(db: None, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[None]:
    """The toy model, no throttling, and the test's database connection kept open across WSGI requests."""
    with in_process_app(monkeypatch, settings):
        yield


@pytest.fixture(params=["anonymous", "staff"])
def role_headers(request: pytest.FixtureRequest, db: None) -> dict[str, str]:
    if request.param == "anonymous":
        return {}
    staff, _ = User.objects.get_or_create(username="contract-staff", defaults={"is_staff": True})
    return {"Authorization": f"Token {Token.objects.get_or_create(user=staff)[0].key}"}


schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


def error_shape_check(response: Any) -> None:
    """A 4xx/5xx body is ``{"detail": str, "code": str}``, ``fields`` (when present) maps names to messages."""
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str), body
    assert body["detail"], body
    assert isinstance(body.get("code"), str), body
    fields = body.get("fields", {})
    assert isinstance(fields, dict), body
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in fields.values()), body
    if response.status_code in (429, 503):
        assert response.headers.get("Retry-After"), (response.status_code, body)


@schema.parametrize()
@settings(max_examples=ERROR_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_every_error_of_every_operation_has_the_documented_shape(case: Any, role_headers: dict[str, str]) -> None:
    # Given an input generated from the schema (valid and invalid), sent anonymously and as staff
    # When the app handles it
    response = case.call(headers=role_headers)
    # Then any error is documented for the operation, in the one error shape, and never a 5xx
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        _errors[response.status_code] += 1
        error_shape_check(response)
        case.validate_response(
            response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )


def test_throttled_requests_have_the_error_shape_and_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a search rate of one a minute
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"search": "1/min", "read": "1/min"})
    cache.clear()
    client = APIClient()
    client.get("/api/v1/search", {"q": "image:1"})
    # When a second search follows at once
    response = client.get("/api/v1/search", {"q": "image:1"})
    # Then it is a 429 in the one error shape, with Retry-After
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert set(response.json()) == {"detail", "code"}


def test_real_search_similar_and_status_responses_match_their_documented_schemas() -> None:
    # Given two ready, embedded images
    image = new_image(embedded=True)
    new_image(embedded=True)
    calls = [
        ("/api/v1/search", "GET", {"query": {"q": "a red circle", "format": "PNG", "tags": "Nothing-Like-This"}}),
        ("/api/v1/search", "GET", {"query": {"q": f"image:{image.pk} + red", "collapse": "true", "limit": 5}}),
        ("/api/v1/search", "POST", {"body": {"terms": [{"text": "red circle"}, {"image_id": image.pk, "weight": -0.5}]},
                                    "media_type": "application/json"}),
        ("/api/v1/images/{id}/similar", "GET", {"path_parameters": {"id": image.pk}, "query": {"format": "png"}}),
        ("/api/v1/status", "GET", {}),
    ]  # fmt: skip
    for path, method, kwargs in calls:
        case = schema[path][method].Case(**kwargs)
        # When the operation is called for real
        response = case.call()
        # Then it answers 200 with a body that matches its documented schema
        assert response.status_code == 200, (path, response.text[:300])
        case.validate_response(
            response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )
    body = schema["/api/v1/search"]["GET"].Case(query={"q": f"image:{image.pk}"}).call().json()
    assert body["results"], "a real search found nothing; the schema check above would prove little"

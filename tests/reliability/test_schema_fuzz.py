"""Schema fuzzing: schemathesis drives every operation of the generated OpenAPI schema in-process (the WSGI app),
as staff so uploads and deletes are exercised too, and checks that no input produces a server error.

Bounded for CI: ``FUZZ_EXAMPLES`` examples per operation (25 by default), derandomised so a failure reproduces.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from semsearch_site.wsgi import application

from .conftest import FaultReport
from .in_process import in_process_app

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))

_tally: Counter[str] = Counter()
_statuses: Counter[int] = Counter()


@pytest.fixture(autouse=True)
def _in_process_app(db: None, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[None]:
    """The app in this process while the fuzzer runs (see ``in_process_app``)."""
    with in_process_app(monkeypatch, settings):
        yield


@pytest.fixture
def staff_headers(db: None) -> dict[str, str]:
    staff, _ = User.objects.get_or_create(username="fuzz-staff", defaults={"is_staff": True})
    return {"Authorization": f"Token {Token.objects.get_or_create(user=staff)[0].key}"}


@pytest.fixture(scope="module", autouse=True)
def _report(fault_report: FaultReport) -> Iterator[None]:
    yield
    if _tally:
        fault_report.record(
            "schema_fuzz",
            operations=len(_tally),
            examples=sum(_tally.values()),
            examples_per_operation=dict(sorted(_tally.items())),
            statuses={str(code): count for code, count in sorted(_statuses.items())},
            server_errors=sum(count for code, count in _statuses.items() if code >= 500),
        )


# Loaded at collection from the in-process app (generating the schema needs no database).
# (``schemathesis.pytest.from_fixture`` would be lazier, but 4.32 breaks on pytest 9's node ids.)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_produces_a_server_error(case: Any, staff_headers: dict[str, str]) -> None:
    # Given an input generated from the schema (valid and invalid), sent by a staff member
    # When the app handles it
    response = case.call(headers=staff_headers)
    _tally[f"{case.operation.method.upper()} {case.operation.path}"] += 1
    _statuses[response.status_code] += 1
    # Then the answer is never a 5xx
    case.validate_response(response, checks=[not_a_server_error])

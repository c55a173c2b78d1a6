"""Liveness (``/healthz``) and readiness (``/readyz``): the latter says which part is not ready, as JSON."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests; touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def _check_broker() -> str | None:
    from workers.selectors import broker_check

    return broker_check()


def _check_model() -> str | None:
    from search.embeddings import encoder_status

    status = encoder_status()
    return None if status["loaded"] else (status["error"] or "The model is still loading.")


def _check_index() -> str | None:
    from search.index import index_status_for_readiness

    return index_status_for_readiness()


READINESS_CHECKS: dict[str, Callable[[], str | None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "model": _check_model,
    "index": _check_index,
}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every part can serve, else 503; the body names each part's state and, if not ready, why."""
    checks: dict[str, dict[str, object]] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            problem = check()
        except Exception as exc:  # a readiness probe reports failures, it never raises them
            problem = f"{type(exc).__name__}: {exc}"
        checks[name] = {"ready": problem is None, **({"reason": problem} if problem else {})}
    ready = all(check["ready"] for check in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)

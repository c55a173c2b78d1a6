"""Liveness (``/healthz``) and readiness (``/readyz``): the latter says which part is not ready, as JSON.

Each readiness check returns ``None`` when its part can serve, else a one-line reason; ``readyz`` turns an
exception from a check into that check's reason, so the endpoint itself never fails.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
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
        row = cursor.fetchone()
    return None if row and row[0] == 1 else f"The database answered {row!r} to SELECT 1."


def _check_broker() -> str | None:
    from core.queues import broker_check

    return broker_check()


def _check_model() -> str | None:
    from search.selectors import active_model_status

    status = active_model_status()
    return None if status.get("loaded") else (status.get("error") or "The model is not loaded yet.")


def _check_index() -> str | None:
    from search.index import index_status_for_readiness

    return index_status_for_readiness()


READINESS_CHECKS: dict[str, Callable[[], str | None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "model": _check_model,
    "index": _check_index,
}


def _optional_ocr() -> dict[str, object]:
    from images.services.ocr import ocr_status

    return ocr_status()


# Optional parts: reported under "optional" (available or not, and why) without making the service unready.
OPTIONAL_CHECKS: dict[str, Callable[[], dict[str, object]]] = {"ocr": _optional_ocr}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every part can serve, else 503; the body names each part's state and, if not ready, why (the
    reasons only to signed-in users when reading is private: they name models and hosts). Optional parts (OCR) are
    listed under ``optional`` with ``available`` and a ``reason``; they never cause a 503."""
    explain = settings.SEMSEARCH_SEARCH_PUBLIC or request.user.is_authenticated
    checks: dict[str, dict[str, object]] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            problem = check()
        except Exception as exc:  # a readiness probe reports failures, it never raises them
            problem = f"{type(exc).__name__}: {exc}"
        checks[name] = {"ready": problem is None, **({"reason": problem} if problem and explain else {})}
    ready = all(check["ready"] for check in checks.values())
    optional: dict[str, dict[str, object]] = {}
    for name, report in OPTIONAL_CHECKS.items():
        try:
            optional[name] = report()
        except Exception as exc:  # as above: reported, never raised
            optional[name] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
        if not explain:
            optional[name].pop("reason", None)
    return JsonResponse({"ready": ready, "checks": checks, "optional": optional}, status=200 if ready else 503)

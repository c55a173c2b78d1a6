"""Endpoint discovery for the authorisation matrix and the fuzzer: the REST operations come from the generated
OpenAPI schema and the pages from the URL resolver, so a new endpoint is covered the day it is added, and an
expected one that disappears fails loudly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# Operations the product promises (issues 5 and 6). Paths are compared with parameters as "{}" and without a
# trailing slash, so "/api/v1/images/{id}/" and "/api/v1/images/{pk}" are the same operation.
EXPECTED_OPERATIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/search"),
        ("POST", "/api/v1/search"),
        ("GET", "/api/v1/images"),
        ("POST", "/api/v1/images"),
        ("POST", "/api/v1/images/from-url"),
        ("GET", "/api/v1/images/{}"),
        ("DELETE", "/api/v1/images/{}"),
        ("GET", "/api/v1/images/{}/similar"),
        ("GET", "/api/v1/status"),
    }
)
EXPECTED_PAGES: frozenset[str] = frozenset({"", "images/{}", "media/{}", "healthz", "readyz", "metrics"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in the schema, e.g. /api/v1/images/{id}/
    spec: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.method, normalise(self.path)

    @property
    def is_read(self) -> bool:
        """Reads change nothing; searching with POST (a JSON or image query) is a read."""
        return self.method not in WRITE_METHODS or normalise(self.path).endswith("/search")

    @property
    def is_search(self) -> bool:
        """Operations that ``SEMSEARCH_SEARCH_PUBLIC=false`` closes to anonymous users."""
        path = normalise(self.path)
        return path.endswith("/search") or path.endswith("/similar")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path).rstrip("/")


def openapi_schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def api_operations(schema: dict[str, Any] | None = None) -> list[Operation]:
    """Every operation in the generated schema (the schema endpoints themselves excluded)."""
    schema = schema or openapi_schema()
    operations = []
    for path, item in schema.get("paths", {}).items():
        for method, spec in item.items():
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"} and not path.startswith("/api/schema"):
                operations.append(Operation(method.upper(), path, spec))
    return sorted(operations, key=lambda op: (op.path, op.method))


def page_routes() -> list[str]:
    """Routes outside the REST API and the admin, from the URL resolver, with parameters written as ``{}`` (and the
    trailing slash, if any, kept so a URL built from one needs no redirect)."""
    routes: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                routes.append(route)

    walk(get_resolver().url_patterns, "")
    pages = []
    for route in routes:
        if route.startswith(("admin/", "api/", "^")) or "(?P<format>" in route:
            continue
        pages.append(re.sub(r"<[^>]+>", "{}", route).lstrip("^").rstrip("$"))
    return sorted(set(pages))


def resolve_ref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node

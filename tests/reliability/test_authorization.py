"""Who may do what: every REST operation × {anonymous, user, editor (add/change/delete permission), staff}, CSRF on
session-authenticated writes, and token handling. Operations are discovered from the generated OpenAPI schema, so
new endpoints are covered without editing this file; ``test_every_promised_endpoint_exists`` fails loudly when a
promised one is missing."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from images.models import Image

from .conftest import FaultReport
from .endpoints import EXPECTED_OPERATIONS, EXPECTED_PAGES, Operation, api_operations, openapi_schema, page_routes
from .endpoints import resolve_ref as _ref

ROLES = ("anonymous", "user", "editor", "staff")
DENIED = (401, 403)


def _png(seed: int) -> bytes:
    from PIL import Image as PILImage

    picture = PILImage.new("RGB", (24, 24), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    picture.putpixel((0, 0), tuple(seed.to_bytes(6, "big")[:3]))  # distinct bytes for every seed
    picture.putpixel((1, 0), tuple(seed.to_bytes(6, "big")[3:]))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


_counter = iter(range(1, 10_000_000))


def new_image(*, embedded: bool = False) -> Image:
    """A stored image created through the ingestion service (embedding not enqueued); ``embedded``: also embedded
    in-process with the toy model, so it is ``ready`` and has a stored vector."""
    from images.services.ingest import image_ingest

    image = image_ingest(data=_png(next(_counter)), filename="authz.png", title="authz", enqueue=False).image
    if embedded:
        from search.services.embedding import embedding_compute

        embedding_compute(image_ids=[image.pk])
        image.refresh_from_db()
        assert image.status == "ready", image.failure_reason
    return image


@pytest.fixture
def unthrottled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rate limits high and counters empty, so the matrix sees permissions, not throttling."""
    rates = dict.fromkeys(("search", "upload", "read", "fetch"), "100000/min")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def users(db: None) -> dict[str, User | None]:
    plain = User.objects.create_user("authz-user", password="pw-authz-user-123")
    editor = User.objects.create_user("authz-editor", password="pw-authz-editor-123")
    editor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="images", codename__in=["add_image", "change_image", "delete_image"]
        )
    )
    staff = User.objects.create_user("authz-staff", password="pw-authz-staff-123", is_staff=True)
    return {"anonymous": None, "user": plain, "editor": editor, "staff": staff}


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _example(schema: dict[str, Any], name: str, prop: dict[str, Any], seed: int) -> Any:
    prop = _ref(schema, prop)
    kind = prop.get("type")
    if prop.get("format") == "binary":
        return SimpleUploadedFile(f"authz-{seed}.png", _png(1_000_000 + seed), content_type="image/png")
    if kind == "array":
        item = _ref(schema, prop.get("items", {}))
        return [_example(schema, name, item, seed)] if item.get("format") == "binary" else []
    if "enum" in prop:
        return prop["enum"][0]
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "object":
        return {}
    if prop.get("format") == "uri":
        return "http://127.0.0.1:9/nothing-listens-here.png"
    return "a red circle" if name in {"q", "text", "query"} else "authz"


def _is_file(schema: dict[str, Any], prop: dict[str, Any]) -> bool:
    """A binary field, or a list of them (a multi-file upload)."""
    prop = _ref(schema, prop)
    return prop.get("format") == "binary" or _ref(schema, prop.get("items", {})).get("format") == "binary"


def request_for(schema: dict[str, Any], op: Operation, image_id: int, seed: int) -> tuple[str, dict[str, Any]]:
    """The URL and client keyword arguments for a plausible call of ``op`` on image ``image_id``."""
    url = re.sub(r"\{[^}]*\}", str(image_id), op.path)
    params = {p["name"]: _example(schema, p["name"], p.get("schema", {}), seed)
              for p in op.spec.get("parameters", []) if p.get("in") == "query" and p.get("required")}  # fmt: skip
    if op.method == "GET":
        params.setdefault("q", "a red circle") if op.is_search else None
        return url, {"data": params}
    if op.method == "DELETE":
        return url, {}
    content = op.spec.get("requestBody", {}).get("content", {})
    media = "multipart/form-data" if "multipart/form-data" in content else next(iter(content), "application/json")
    body_schema = _ref(schema, content.get(media, {}).get("schema", {}))
    required = set(body_schema.get("required", []))
    body = {
        name: _example(schema, name, prop, seed)
        for name, prop in body_schema.get("properties", {}).items()
        if name in required or _is_file(schema, prop)
    }
    if media == "multipart/form-data":
        return url, {"data": body, "format": "multipart"}
    return url, {"data": body, "format": "json"}


def call(client: APIClient, op: Operation, url: str, kwargs: dict[str, Any]) -> Any:
    return getattr(client, op.method.lower())(url, **kwargs)


def test_every_promised_endpoint_exists() -> None:
    # Given the generated schema and the URL map
    discovered = {op.key for op in api_operations()}
    pages = {route.rstrip("/") for route in page_routes()}
    # Then every promised REST operation and page is served
    assert not EXPECTED_OPERATIONS - discovered, f"missing REST operations: {sorted(EXPECTED_OPERATIONS - discovered)}"
    assert not EXPECTED_PAGES - pages, f"missing pages: {sorted(EXPECTED_PAGES - pages)}"


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
def test_matrix_reads_public_writes_need_permission(
    users: dict[str, User | None], settings: Any, fault_report: FaultReport
) -> None:
    # Given every operation of the schema, four roles and the default setting (search is public)
    settings.SEMSEARCH_SEARCH_PUBLIC = True
    settings.SEMSEARCH_MODEL_ID = "toy"
    schema = openapi_schema()
    operations = api_operations(schema)
    assert operations, "the schema lists no operations"
    failures: list[str] = []
    statuses: dict[str, dict[str, int]] = {}
    refused = changed_after_refusal = 0
    seed = 0
    for op in operations:
        for role in ROLES:
            seed += 1
            image = new_image(embedded=op.path.rstrip("/").endswith("/similar"))
            before = Image.objects.count()
            url, kwargs = request_for(schema, op, image.pk, seed)
            # When the role calls the operation
            response = call(client_for(users[role]), op, url, kwargs)
            status = response.status_code
            statuses.setdefault(str(op), {})[role] = status
            # Then reads are open to all, writes only to the editor and staff, and nothing answers 5xx
            allowed = op.is_read or role in ("editor", "staff")
            if status >= 500:
                failures.append(f"{op} as {role}: {status}")
            elif allowed and status in DENIED:
                failures.append(f"{op} as {role}: refused with {status} {response.content[:200]!r}")
            elif not allowed and status not in DENIED:
                failures.append(f"{op} as {role}: allowed ({status}) but should be refused")
            elif not allowed and role == "anonymous" and status != 401:
                failures.append(f"{op} as anonymous: {status}, expected 401 (token auth asks for credentials)")
            # And a refused write changed nothing
            changed = Image.objects.count() != before or not Image.objects.filter(pk=image.pk).exists()
            if not allowed and status in DENIED:
                refused += 1
                if changed:
                    changed_after_refusal += 1
                    failures.append(f"{op} as {role}: refused but the catalogue changed")
    fault_report.record(
        "authorization_matrix",
        operations=len(operations),
        calls=len(operations) * len(ROLES),
        refused_writes=refused,
        refused_writes_that_changed_data=changed_after_refusal,
        server_errors=sum(1 for row in statuses.values() for code in row.values() if code >= 500),
        statuses=statuses,
    )
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
def test_private_reading_needs_authentication(users: dict[str, User | None], settings: Any) -> None:
    # Given SEMSEARCH_SEARCH_PUBLIC=false
    settings.SEMSEARCH_SEARCH_PUBLIC = False
    settings.SEMSEARCH_MODEL_ID = "toy"
    schema = openapi_schema()
    reads = [op for op in api_operations(schema) if op.is_read]
    assert {op.key for op in reads} >= {("GET", "/api/v1/search"), ("POST", "/api/v1/search"),
                                        ("GET", "/api/v1/images"), ("GET", "/api/v1/images/{}"),
                                        ("GET", "/api/v1/images/{}/similar"), ("GET", "/api/v1/status")}  # fmt: skip
    failures = []
    for op in reads:
        for role in ROLES:
            image = new_image(embedded=op.path.rstrip("/").endswith("/similar"))
            url, kwargs = request_for(schema, op, image.pk, 1)
            # When each role reads (searches, lists, opens an image, asks for the status)
            response = call(client_for(users[role]), op, url, kwargs)
            status = response.status_code
            # Then anonymous callers get a 401 that says why, and every signed-in role reads as before
            if role == "anonymous" and (status != 401 or "private" not in response.json()["detail"]):
                failures.append(f"{op} anonymous got {status} {response.content[:120]!r} with reading private")
            if role != "anonymous" and (status in DENIED or status >= 500):
                failures.append(f"{op} as {role} got {status} with reading private")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
@pytest.mark.parametrize("public", [True, False])
def test_pages_and_media_follow_the_privacy_setting(users: dict[str, User | None], settings: Any, public: bool) -> None:
    # Given a stored, embedded image and SEMSEARCH_SEARCH_PUBLIC either way
    settings.SEMSEARCH_SEARCH_PUBLIC = public
    settings.SEMSEARCH_MODEL_ID = "toy"
    image = new_image(embedded=True)
    pages = ["/", "/?q=a+red+circle", f"/images/{image.pk}/"]
    media = [f"/media/{image.original.name}", f"/media/{image.thumbnail.name}"]
    anonymous, signed_in = Client(), Client()
    signed_in.force_login(users["user"])
    token = client_for(users["user"])
    for url in pages:
        # When an anonymous visitor and a signed-in user open each page
        # Then the page is open to anyone when public; when private the visitor is sent to sign in
        status = anonymous.get(url).status_code
        assert status == (200 if public else 302), (url, status)
        assert signed_in.get(url).status_code == 200, url
    for url in media:
        # And media files are served to anyone when public; when private only with a session or a token
        assert anonymous.get(url).status_code == (200 if public else 401), url
        assert signed_in.get(url).status_code == 200, url
        assert token.get(url).status_code == 200, url
    # And the health checks that reveal nothing stay open
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code in (200, 503)


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
def test_pages_answer_anonymous_readers(settings: Any) -> None:
    # Given every page route from the URL map (not the API or admin)
    settings.SEMSEARCH_SEARCH_PUBLIC = True
    settings.SEMSEARCH_MODEL_ID = "toy"
    image = new_image()
    client = Client()
    failures = []
    for route in page_routes():
        if route.startswith(("static", "media")):
            continue
        url = "/" + route.replace("{}", str(image.pk))
        # When an anonymous visitor opens it
        status = client.get(url).status_code
        # Then it is served (or cleanly "not ready"), never refused, never a server error
        if status in DENIED or (status >= 500 and route != "readyz"):
            failures.append(f"GET {url}: {status}")
    assert not failures, "\n".join(failures)


def _writes() -> list[Operation]:
    return [op for op in api_operations() if not op.is_read]


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
def test_session_writes_need_csrf_token(users: dict[str, User | None], settings: Any) -> None:
    # Given a staff member signed in with a session cookie, in a client that enforces CSRF like a browser
    settings.SEMSEARCH_MODEL_ID = "toy"
    schema = openapi_schema()
    writes = _writes()
    assert writes, "no write operation discovered"
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")  # sets the csrftoken cookie, as any page with a form does
    token = client.cookies["csrftoken"].value
    client.force_login(users["staff"])
    for op in writes:
        image = new_image()
        url, kwargs = request_for(schema, op, image.pk, 7)
        before = Image.objects.count()
        # When it writes without the CSRF token
        refused = _session_call(client, op, url, kwargs)
        # Then the write is refused, names CSRF, and changes nothing
        assert refused.status_code == 403, f"{op}: {refused.status_code}"
        assert b"CSRF" in refused.content, refused.content[:200]
        assert Image.objects.count() == before
        assert Image.objects.filter(pk=image.pk).exists()
        # And with the token from the cookie it passes the CSRF check
        kwargs = request_for(schema, op, image.pk, 8)[1]  # fresh file objects
        accepted = _session_call(client, op, url, kwargs, HTTP_X_CSRFTOKEN=token)
        assert accepted.status_code not in DENIED, f"{op}: {accepted.status_code} {accepted.content[:200]!r}"
        assert accepted.status_code < 500, f"{op}: {accepted.status_code}"


def _session_call(client: Client, op: Operation, url: str, kwargs: dict[str, Any], **headers: str) -> Any:
    """Send ``op`` through Django's browser-like test client (multipart or JSON, as the schema asks)."""
    send = getattr(client, op.method.lower())
    if op.method == "DELETE":
        return send(url, **headers)
    if kwargs.get("format") == "multipart":
        return send(url, data=kwargs.get("data", {}), **headers)
    return send(url, data=kwargs.get("data", {}), content_type="application/json", **headers)


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
def test_token_writes_need_no_csrf_and_bad_tokens_are_401(users: dict[str, User | None]) -> None:
    # Given a staff token and an upload (a write that needs the add permission)
    upload = next(op for op in _writes() if op.key == ("POST", "/api/v1/images"))
    schema = openapi_schema()
    staff = users["staff"]
    assert staff is not None
    good = Token.objects.create(user=staff).key
    # When the token is used from a client that enforces CSRF
    url, kwargs = request_for(schema, upload, 0, 11)
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    # Then the upload is accepted (tokens are not sent by browsers on their own, so no CSRF check applies)
    response = client.post(url, **kwargs)
    assert response.status_code in (200, 201), response.content[:300]
    # And a wrong, malformed or revoked token is a 401 on reads and writes alike, never a silent anonymous call
    staff.is_active = False
    staff.save()
    for header in ("Token not-a-real-token", "Token a b", "Token", f"Token {good}"):
        bad = APIClient()
        bad.credentials(HTTP_AUTHORIZATION=header)
        assert bad.get("/api/v1/status").status_code == 401, header
        _, kwargs = request_for(schema, upload, 0, 12)
        assert bad.post(url, **kwargs).status_code == 401, header


@pytest.mark.django_db
@pytest.mark.usefixtures("unthrottled")
def test_web_form_posts_need_csrf_token(users: dict[str, User | None]) -> None:
    # Given every page route, and a browser-like client (signed in, CSRF enforced) without the form's token
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["staff"])
    image = new_image()
    statuses = {}
    for route in page_routes():
        url = "/" + route.replace("{}", str(image.pk))
        # When it posts a form (a picture to search with) to the page
        picture = SimpleUploadedFile("form.png", _png(99), content_type="image/png")
        statuses[url] = client.post(url, {"picture": picture}).status_code
    # Then every page that takes posts refuses it for the missing token; the others do not take posts at all
    assert all(code in (403, 405) for code in statuses.values()), statuses
    assert 403 in statuses.values(), f"no page takes form posts any more: {statuses}"

"""Safe fetching of image URLs: public addresses only (checked after resolution, and the connection goes to exactly
the address checked), every redirect re-checked, a byte cap, a total deadline and an image content type."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection

from core.errors import DomainError

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
USER_AGENT = "semsearch-fetch/1.0"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRejectedError(DomainError):
    """The URL may not be fetched, or fetching it failed; the message says why in one line."""

    code = "fetch_rejected"


class FetchTimeoutError(FetchRejectedError):
    """The download did not finish within its deadline."""

    status_code = 504
    code = "fetch_timeout"


class FetchBusyError(DomainError):
    """Every fetch slot of this process is taken; retry shortly."""

    status_code = 503
    code = "fetch_busy"
    retry_after = 5


_SLOTS: dict[int, threading.BoundedSemaphore] = {}  # per configured size; a cache, not a source of truth
_SLOTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class FetchedFile:
    data: bytes
    content_type: str
    final_url: str


def address_forbidden_reason(address: str) -> str | None:
    """Why connecting to this IP address is refused (loopback, private, ...), or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_forbidden_reason(str(embedded))
            return f"{reason} (embedded in {ip})" if reason else None
    for attribute, label in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                             ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                             ("is_private", "private"), ("is_reserved", "reserved")):  # fmt: skip
        if getattr(ip, attribute):
            return f"{ip} is a {label} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _allowlisted(host: str, port: int) -> bool:
    allowed = {entry.strip().lower() for entry in settings.SEMSEARCH_FETCH_ALLOWLIST if entry.strip()}
    bare = host.strip("[]").lower()
    return bool(allowed & {bare, f"{bare}:{port}", f"[{bare}]:{port}"})


def _resolve(host: str, port: int) -> str:
    """The address to connect to; every address the name resolves to must be allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRejectedError(f"Cannot resolve host {host!r} ({exc}).") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # (an int only for AF_UNIX-like families)
    if not addresses:
        raise FetchRejectedError(f"Host {host!r} has no address.")
    if not _allowlisted(host, port):
        for address in addresses:
            reason = address_forbidden_reason(address)
            if reason:
                raise FetchRejectedError(f"Refusing to fetch from {host!r}: {reason}.")
    return addresses[0]


def _target(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRejectedError(f"Only http and https URLs can be fetched, not {scheme or 'a bare path'!r}.")
    if parts.username or parts.password:
        raise FetchRejectedError("URLs with credentials are not fetched.")
    try:
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRejectedError(f"Invalid URL ({exc}).") from exc
    if not host:
        raise FetchRejectedError("The URL has no host.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path


def _connect(scheme: str, host: str, address: str, port: int, remaining: float) -> HTTPConnection:
    timeout = max(0.05, remaining)
    if scheme == "https":
        conn: HTTPConnection = HTTPSConnection(address, port, timeout=timeout, server_hostname=host,
                                               assert_hostname=host, cert_reqs="CERT_REQUIRED")  # fmt: skip
    else:
        conn = HTTPConnection(address, port, timeout=timeout)
    conn.connect()
    return conn


def _get(url: str, *, deadline: float, max_bytes: int, timeout: float) -> tuple[int, dict, bytes]:
    """One GET without following redirects: (status, headers, body). Body read only for 2xx."""
    scheme, host, port, path = _target(url)
    address = _resolve(host, port)
    conn = None
    watchdog = None
    try:
        conn = _connect(scheme, host, address, port, deadline - time.monotonic())
        sock = conn.sock
        # The total deadline: whatever the server does (drips headers or body), the socket is shut at the deadline.
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, args=(sock,))
        watchdog.daemon = True
        watchdog.start()
        default_port = 443 if scheme == "https" else 80
        host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
        conn.request("GET", path, headers={"Host": host_header, "User-Agent": USER_AGENT,
                                           "Accept": "image/*", "Accept-Encoding": "identity"},
                     preload_content=False)  # fmt: skip
        response = conn.getresponse()
        headers = {key.lower(): value for key, value in response.headers.items()}
        if not 200 <= response.status < 300:
            return response.status, headers, b""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchRejectedError(f"The response is {int(declared):,} bytes, over the limit of {max_bytes:,}.")
        chunks, total = [], 0
        while True:
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise FetchRejectedError(f"The response is over the limit of {max_bytes:,} bytes.")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                break
        if time.monotonic() > deadline:
            raise FetchTimeoutError(f"The download took longer than {timeout:g} s.")
        return response.status, headers, b"".join(chunks)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
        # ValueError covers a certificate for another name (urllib3's CertificateError) and malformed responses.
        if time.monotonic() >= deadline:
            raise FetchTimeoutError(f"The download took longer than {timeout:g} s.") from exc
        raise FetchRejectedError(f"Fetching {host} failed: {exc.__class__.__name__}: {exc}.") from exc
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if conn is not None:
            conn.close()


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def fetch_url(url: str, *, max_bytes: int | None = None, timeout: float | None = None) -> FetchedFile:
    """Download an image from ``url`` under the safety rules in docs/ingestion.md, or raise ``FetchRejectedError``.

    ``max_bytes`` and ``timeout`` (a total deadline, redirects included) default to ``SEMSEARCH_FETCH_MAX_BYTES``
    and ``SEMSEARCH_FETCH_TIMEOUT``. No side effects besides the network requests; safe from any thread.
    """
    max_bytes = int(max_bytes if max_bytes is not None else settings.SEMSEARCH_FETCH_MAX_BYTES)
    timeout = float(timeout if timeout is not None else settings.SEMSEARCH_FETCH_TIMEOUT)
    deadline = time.monotonic() + timeout
    current = url.strip()
    for _hop in range(MAX_REDIRECTS + 1):
        status, headers, body = _get(current, deadline=deadline, max_bytes=max_bytes, timeout=timeout)
        if status in (301, 302, 303, 307, 308):
            location = headers.get("location", "")
            if not location:
                raise FetchRejectedError(f"A {status} redirect without a Location header.")
            current = urljoin(current, location)
            continue
        if not 200 <= status < 300:
            raise FetchRejectedError(f"The server answered HTTP {status}.")
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not content_type.startswith("image/"):
            raise FetchRejectedError(f"The content type is {content_type or 'missing'!r}, not an image.")
        return FetchedFile(data=body, content_type=content_type, final_url=current)
    raise FetchRejectedError(f"More than {MAX_REDIRECTS} redirects.")


def fetch_url_bounded(url: str, *, timeout: float | None = None) -> FetchedFile:
    """``fetch_url`` on one of this process's ``SEMSEARCH_FETCH_CONCURRENCY`` slots, so slow URLs never hold more
    than that many web threads (each for at most ``timeout``). With every slot taken it refuses at once
    (``FetchBusyError``, 503 with ``Retry-After``) rather than queue; a download past its deadline is a
    ``FetchTimeoutError`` (504)."""
    size = max(1, int(settings.SEMSEARCH_FETCH_CONCURRENCY))
    with _SLOTS_LOCK:
        slots = _SLOTS.setdefault(size, threading.BoundedSemaphore(size))
    if not slots.acquire(blocking=False):
        raise FetchBusyError(f"All {size} URL fetch slots are busy; retry in a few seconds.")
    try:
        return fetch_url(url, timeout=timeout)
    finally:
        slots.release()

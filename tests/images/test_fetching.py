"""Safe fetching. Nothing here can reach beyond 127.0.0.0/8: names resolve through a fake table and every
connect to another address is refused by the test, so even a broken guard could not leave the machine."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from images.services import FetchRejectedError, fetch_url
from images.services.fetching import address_forbidden_reason

from .pictures import picture_bytes
from .servers import endless_body, local_server, local_tls_server, redirect, self_signed_certificate, send, slow_body

FAKE_DNS = {
    "public.example": ["93.184.216.34"],
    "private.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "192.168.0.7"],
}
PNG = picture_bytes("PNG")


@pytest.fixture(autouse=True)
def network_jail(monkeypatch) -> list[tuple]:
    """Resolve only literal addresses and the fake names; refuse (and record) any connect outside 127.0.0.0/8."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    attempts: list[tuple] = []

    def fake_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in FAKE_DNS:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in FAKE_DNS[name]]
        if name == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    def guarded_connect(sock, address):
        attempts.append(address)
        if not ipaddress.ip_address(address[0]).is_loopback or not address[0].startswith("127."):
            raise ConnectionRefusedError(f"test network jail: no connections to {address[0]}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


@pytest.fixture
def server(settings):
    routes = {
        "/image.png": lambda h: send(h, PNG, "image/png; charset=binary"),
        "/page": lambda h: send(h, b"<html>", "text/html"),
    }
    with local_server(routes) as srv:
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{srv.port}"]
        yield srv


def test_an_allowlisted_local_server_is_fetched(server):
    fetched = fetch_url(server.url("/image.png"))
    assert fetched.data == PNG
    assert fetched.content_type == "image/png"
    assert fetched.final_url == server.url("/image.png")
    assert server.headers[0]["Host"] == f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/x.png", "127.0.0.1 is a loopback address"),
        ("http://0.0.0.0/", "0.0.0.0 is a unspecified address"),
        ("http://[::]/", ":: is a unspecified address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1 is a loopback address (embedded in ::ffff:7f00:1)"),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
        ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
        ("http://0177.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://localhost/", "127.0.0.1 is a loopback address"),
        ("http://private.example/", "10.1.2.3 is a private address"),
        ("http://metadata.example/latest/", "169.254.169.254 is a link-local address"),
        ("http://mixed.example/", "192.168.0.7 is a private address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[::ffff:10.0.0.1]/", "10.0.0.1 is a private address (embedded in ::ffff:a00:1)"),
    ],
)
def test_forbidden_addresses_are_refused_before_connecting(url, reason, network_jail):
    with pytest.raises(FetchRejectedError) as caught:
        fetch_url(url)
    assert reason in caught.value.message
    assert network_jail == []


@pytest.mark.parametrize("url", ["ftp://public.example/x.png", "file:///etc/passwd", "gopher://a/", "/relative.png"])
def test_only_http_and_https_are_fetched(url):
    with pytest.raises(FetchRejectedError, match="Only http and https"):
        fetch_url(url)


def test_a_public_name_is_connected_to_at_exactly_the_address_checked(network_jail):
    # Given a public name; the jail refuses the connection, so we only see where it would have gone
    with pytest.raises(FetchRejectedError, match="failed"):
        fetch_url("http://public.example/cat.jpg")
    assert network_jail == [("93.184.216.34", 80)]


def test_redirect_to_a_local_address_that_is_not_allowlisted_is_refused(settings):
    with local_server({"/secret.png": lambda h: send(h, PNG)}) as other:
        with local_server({"/go": redirect(other.url("/secret.png"))}) as first:
            settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{first.port}"]
            with pytest.raises(FetchRejectedError, match=r"127\.0\.0\.1 is a loopback address"):
                fetch_url(first.url("/go"))
        assert other.requests == []


def test_redirect_to_a_private_name_is_refused(server, network_jail):
    server.routes["/go"] = redirect("http://private.example/x.png")
    with pytest.raises(FetchRejectedError, match=r"10\.1\.2\.3 is a private address"):
        fetch_url(server.url("/go"))
    assert all(address[0] == "127.0.0.1" for address in network_jail)


def test_allowed_redirects_are_followed_up_to_three(server):
    server.routes.update({"/r1": redirect("/r2", 301), "/r2": redirect("/r3", 307), "/r3": redirect("/image.png")})
    assert fetch_url(server.url("/r1")).data == PNG
    server.routes["/r0"] = redirect("/r1")
    with pytest.raises(FetchRejectedError, match="More than 3 redirects"):
        fetch_url(server.url("/r0"))


def test_a_slow_server_is_cut_off_at_the_total_deadline(server):
    server.routes["/slow"] = slow_body(10)
    started = time.monotonic()
    with pytest.raises(FetchRejectedError, match="took longer than 1 s"):
        fetch_url(server.url("/slow"), timeout=1)
    assert time.monotonic() - started < 3


def test_a_body_over_the_cap_is_refused(server):
    server.routes["/big.png"] = lambda h: send(h, b"\0" * 200_000)
    with pytest.raises(FetchRejectedError, match="200,000 bytes, over the limit of 50,000"):
        fetch_url(server.url("/big.png"), max_bytes=50_000)
    server.routes["/endless.png"] = endless_body
    with pytest.raises(FetchRejectedError, match="over the limit of 50,000 bytes"):
        fetch_url(server.url("/endless.png"), max_bytes=50_000)


def test_a_non_image_content_type_is_refused(server):
    with pytest.raises(FetchRejectedError, match="content type is 'text/html', not an image"):
        fetch_url(server.url("/page"))


def test_an_error_status_is_refused(server):
    with pytest.raises(FetchRejectedError, match="HTTP 404"):
        fetch_url(server.url("/missing.png"))


@pytest.mark.parametrize(
    ("address", "public"),
    [("8.8.8.8", True), ("2606:4700::1111", True), ("100.64.0.1", False), ("fe80::1", False),
     ("2002:7f00:1::", False), ("64:ff9b::a00:1", False), ("fc00::1", False), ("240.0.0.1", False)],
)  # fmt: skip
def test_address_classification(address, public):
    assert (address_forbidden_reason(address) is None) is public


def test_https_verifies_the_certificate_for_the_name_while_connecting_to_the_checked_address(
    settings, tmp_path, monkeypatch
):
    cert, key = self_signed_certificate(tmp_path, "localhost")
    with local_tls_server({"/cat.png": lambda h: send(h, PNG)}, cert, key) as server:
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"localhost:{server.port}"]
        url = f"https://localhost:{server.port}/cat.png"
        # An untrusted (self-signed) certificate is refused
        with pytest.raises(FetchRejectedError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_url(url)
        # Trusted, it is fetched over a connection to the resolved address with the name checked in TLS
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert fetch_url(url).data == PNG
        # and a certificate for another name is refused even though the address is the same
        settings.SEMSEARCH_FETCH_ALLOWLIST = [f"127.0.0.1:{server.port}"]
        with pytest.raises(FetchRejectedError, match=r"doesn't match 'localhost'"):
            fetch_url(f"https://127.0.0.1:{server.port}/cat.png")


def test_a_garbled_response_is_a_clear_error(server):
    def garbage(handler):
        handler.wfile.write(b"NOT-HTTP garbage\r\n\r\n")
        handler.close_connection = True

    server.routes["/garbage.png"] = garbage
    with pytest.raises(FetchRejectedError, match=r"^Fetching 127\.0\.0\.1 failed: "):
        fetch_url(server.url("/garbage.png"))

"""A local HTTP server on 127.0.0.1 for the fetch and import tests, with routes for every hostile behaviour."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


def send(handler: BaseHTTPRequestHandler, body: bytes, content_type: str = "image/png", status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def slow_body(seconds: float) -> Route:
    """Headers at once, then one byte every 0.1 s for ``seconds``: each read is quick, the whole is not."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.end_headers()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    return route


def endless_body(handler: BaseHTTPRequestHandler) -> None:
    """An image content type with no Content-Length and a body that never ends (stops when the client hangs up)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.end_headers()
    try:
        for _ in range(10_000):
            handler.wfile.write(b"\0" * 65536)
    except OSError:
        pass


class LocalServer:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                owner.headers.append(dict(self.headers.items()))
                route = owner.routes.get(self.path)
                if route is None:
                    send(self, b"not found", "text/plain", 404)
                else:
                    route(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def local_server(routes: dict[str, Route]) -> Iterator[LocalServer]:
    with _serving(LocalServer(routes)) as server:
        yield server


@contextmanager
def _serving(server: LocalServer) -> Iterator[LocalServer]:
    """Serve on a background thread for the duration of the block, then shut down and close the socket."""
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def self_signed_certificate(folder, host: str = "localhost"):
    """(certificate, key) paths for ``host``, made with the openssl command line."""
    import subprocess

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def local_tls_server(routes: dict[str, Route], cert, key) -> Iterator[LocalServer]:
    import ssl

    server = LocalServer(routes)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    with _serving(server):
        yield server

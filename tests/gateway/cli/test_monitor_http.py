"""The HTTP client of `modelgate drift` / `health` (standard library) against odd answers.

A small stdlib HTTP server on loopback plays the gateway's admin endpoint with answers a
real gateway gives rarely (a proxy's HTML error page, a redirect, a JSON array, a dropped
connection); every one must end as one CLIError line, never a traceback.
"""

from __future__ import annotations

import argparse
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.cli import monitor_commands
from gateway.cli.output import CLIError

TOKEN = "monitor-http-token"


class Handler(BaseHTTPRequestHandler):
    """Answers by path; records every request's path and Authorization header."""

    seen: list[tuple[str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        type(self).seen.append((self.path, self.headers.get("authorization")))
        status, body, extra = ANSWERS.get(self.path, (404, b'{"error": "unknown path"}', {}))
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


EMPTY = b'"healthy": null, "versions": []}'
ANSWERS: dict[str, tuple[int, bytes, dict[str, str]]] = {
    "/admin/models/ok/health": (200, b'{"model": "ok", ' + EMPTY, {}),
    "/admin/models/proxy/health": (502, b"<html>\n<h1>Bad   gateway</h1>\n</html>\n", {}),
    "/admin/models/moved/health": (302, b"", {"location": "/admin/models/ok/health"}),
    "/admin/models/array/health": (200, b"[1, 2]", {}),
    "/admin/models/a%20b%2Fc/health": (200, b'{"model": "a b/c", ' + EMPTY, {}),
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def args(name: str, url: str) -> argparse.Namespace:
    return argparse.Namespace(name=name, url=url, home=None, json=True)


def fetch(name: str, url: str) -> dict:
    return monitor_commands.fetch(args(name, url), "health")


@pytest.fixture(autouse=True)
def token(monkeypatch) -> None:
    monkeypatch.setenv("MODELGATE_ADMIN_TOKEN", TOKEN)
    Handler.seen.clear()


def test_a_json_object_is_returned_and_the_token_sent(server):
    assert fetch("ok", server)["model"] == "ok"
    assert Handler.seen == [("/admin/models/ok/health", f"Bearer {TOKEN}")]


def test_a_non_json_error_page_is_one_line(server):
    with pytest.raises(CLIError) as caught:
        fetch("proxy", server)
    assert str(caught.value) == (
        f"{server}/admin/models/proxy/health: HTTP 502: <html> <h1>Bad gateway</h1> </html>"
    )


def test_a_redirect_is_not_followed(server):
    with pytest.raises(CLIError, match="HTTP 302"):
        fetch("moved", server)
    assert [path for path, _ in Handler.seen] == ["/admin/models/moved/health"]


def test_an_answer_that_is_not_an_object_is_refused(server):
    with pytest.raises(CLIError, match="the answer is not a JSON object"):
        fetch("array", server)


def test_the_model_name_is_one_path_segment(server):
    assert fetch("a b/c", server)["model"] == "a b/c"


def test_a_url_that_is_not_http_is_refused_before_any_request(server):
    for url in ("ftp://127.0.0.1:21", "127.0.0.1:8000", "file:///etc"):
        with pytest.raises(CLIError, match="cannot reach the server at .*: not an http"):
            fetch("ok", url)
    assert Handler.seen == []


def test_a_connection_closed_without_an_answer():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def close_at_once() -> None:
            connection, _ = listener.accept()
            connection.recv(4096)
            connection.close()

        thread = threading.Thread(target=close_at_once, daemon=True)
        thread.start()
        with pytest.raises(CLIError, match=r"cannot reach the server at http://127\.0\.0\.1:\d+: "):
            fetch("ok", f"http://127.0.0.1:{port}")
        thread.join(5)


def test_a_token_a_header_cannot_carry_is_refused(monkeypatch, server):
    monkeypatch.setenv("MODELGATE_ADMIN_TOKEN", "two\nlines")
    with pytest.raises(CLIError, match="cannot carry"):
        fetch("ok", server)
    assert Handler.seen == []

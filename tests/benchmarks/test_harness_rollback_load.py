"""The rollback scenario's admin client against a real HTTP server on loopback.

The server is a small stdlib one that answers like modelgate's admin API does: 409 for a
rollback with no previous production version, until a switch has made one.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import orjson
import pytest

from benchmarks.rollback_load import RollbackLoad
from tests.support.polling import wait_until


class AdminHandler(http.server.BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict]] = []
    has_target = False
    fail_after = 10**9

    def do_POST(self) -> None:
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, self.headers.get("Authorization", ""), body))
        if self.headers.get("Authorization") != "Bearer secret":
            status, answer = 401, {"error": "admin token required"}
        elif len(type(self).calls) > type(self).fail_after:
            status, answer = 503, {"error": "not ready"}
        elif self.path.endswith("/switch"):
            type(self).has_target = True
            status, answer = 200, {"action": "switch"}
        elif not type(self).has_target:
            status, answer = 409, {"error": "model 'm' has no previous production version"}
        else:
            status, answer = 200, {"action": "rollback"}
        data = orjson.dumps(answer)
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def wait_for_calls(count: int, timeout_s: float = 20.0) -> None:
    """Wait (not a timing assertion) until the server has seen ``count`` requests."""
    wait_until(lambda: len(AdminHandler.calls) >= count, timeout_s, 0.01)


@pytest.fixture
def admin_port() -> Iterator[int]:
    AdminHandler.calls = []
    AdminHandler.has_target = False
    AdminHandler.fail_after = 10**9
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AdminHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_first_swap_switches_then_rollbacks_follow(admin_port: int) -> None:
    with RollbackLoad(admin_port, "m", "secret", every_s=0.02) as load:
        wait_for_calls(5)
    paths = [path for path, _, _ in AdminHandler.calls]
    assert paths[:3] == [
        "/admin/models/m/rollback",
        "/admin/models/m/switch",
        "/admin/models/m/rollback",
    ]
    assert paths.count("/admin/models/m/switch") == 1
    assert all(auth == "Bearer secret" for _, auth, _ in AdminHandler.calls)
    assert AdminHandler.calls[1][2] == {
        "version": "1.1.0",
        "force": True,
        "reason": "benchmark rollback load",
    }
    stats = load.stats.as_dict()
    assert stats["swaps_ok"] >= 3
    assert stats["swaps_failed"] == 0
    assert stats["swap_p50_ms"] is not None


def test_refused_swaps_are_counted_with_their_answer(admin_port: int) -> None:
    AdminHandler.fail_after = 3
    with RollbackLoad(admin_port, "m", "secret", every_s=0.02) as load:
        wait_for_calls(6)
    stats = load.stats.as_dict()
    assert stats["swaps_ok"] == 2  # the switch and one rollback
    assert stats["swaps_failed"] >= 1
    assert stats["swap_failures"][0].startswith("503: ")


def test_wrong_token_fails_every_swap(admin_port: int) -> None:
    with RollbackLoad(admin_port, "m", "wrong", every_s=0.02) as load:
        wait_for_calls(2)
    assert load.stats.ok == 0
    assert load.stats.failed >= 2
    assert "401" in load.stats.failures[0]

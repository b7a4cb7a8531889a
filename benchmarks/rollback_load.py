"""An admin client that rolls a model's production version back on a fixed period under load.

Runs in a thread of the harness while wrk loads the gateway: every ``every_s`` seconds it
sends ``POST /admin/models/{name}/rollback`` with the bearer token. A rollback goes back to
the version that most recently left production, so consecutive rollbacks alternate
between two versions. When the model has no rollback target yet (a fresh home), the first
swap is a ``POST .../switch`` to the other version, which creates one.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

import orjson

from benchmarks.procs import HOST


@dataclass(slots=True)
class SwapStats:
    ok: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # first few answers, for the report

    def as_dict(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)
        p50 = ordered[len(ordered) // 2] if ordered else None
        worst = ordered[-1] if ordered else None
        return {
            "swaps_ok": self.ok,
            "swaps_failed": self.failed,
            "swap_p50_ms": round(p50, 2) if p50 is not None else None,
            "swap_max_ms": round(worst, 2) if worst is not None else None,
            "swap_failures": self.failures[:3],
        }


class RollbackLoad:
    """``with RollbackLoad(port, model, token, 0.1) as load: ...``; then ``load.stats``."""

    def __init__(
        self, port: int, model: str, token: str, every_s: float, switch_to: str = "1.1.0"
    ) -> None:
        self.port = port
        self.model = model
        self.every_s = every_s
        self.switch_to = switch_to
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.stats = SwapStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rollback-load", daemon=True)

    def __enter__(self) -> RollbackLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _post(self, conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[int, bytes]:
        conn.request("POST", path, body=orjson.dumps(body), headers=self.headers)
        response = conn.getresponse()
        return response.status, response.read()

    def _swap(self, conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        base = f"/admin/models/{self.model}"
        status, answer = self._post(conn, f"{base}/rollback", {"reason": "benchmark"})
        if status == 409 and b"no previous production" in answer:
            # fresh home: promote the other version once, which makes a rollback target
            status, answer = self._post(
                conn,
                f"{base}/switch",
                {"version": self.switch_to, "force": True, "reason": "benchmark rollback load"},
            )
        return status, answer

    def _loop(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10.0)
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status, answer = self._swap(conn)
                except (OSError, http.client.HTTPException) as exc:
                    status, answer = 0, repr(exc).encode()
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=10.0)
                if status == 200:
                    self.stats.ok += 1
                    self.stats.latencies_ms.append((time.monotonic() - started) * 1000)
                else:
                    self.stats.failed += 1
                    self.stats.failures.append(f"{status}: {answer[:200].decode(errors='replace')}")
                next_at += self.every_s
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            conn.close()

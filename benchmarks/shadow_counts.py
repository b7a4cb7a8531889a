"""Shadow copies mirrored, compared and dropped by a running modelgate, from its admin API.

The shadow scenario reads ``GET /admin/models/{name}/shadow`` before and after each measured
run; the difference of the two readings is what that run's load mirrored. A copy still
waiting in the mirror's backlog when the run ends is in neither ``compared`` nor
``dropped`` yet, so the drop rate is dropped over (compared + failed + dropped).
"""

from __future__ import annotations

import http.client

import orjson

from benchmarks.procs import HOST

FIELDS = ("requests", "errors", "dropped")


def read_shadow_counts(port: int, model: str, token: str) -> dict[str, int]:
    """Totals over the model's shadow versions since the server started."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10.0)
    try:
        conn.request(
            "GET", f"/admin/models/{model}/shadow", headers={"Authorization": f"Bearer {token}"}
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise ValueError(f"shadow report answered {response.status}: {body[:200]!r}")
    shadows = orjson.loads(body)["shadows"]
    return {name: sum(int(s.get(name) or 0) for s in shadows) for name in FIELDS}


def shadow_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """One run's copies: ``shadow_compared`` (ran and compared), ``shadow_failed``,
    ``shadow_dropped``."""
    return {
        "shadow_compared": after["requests"] - before["requests"],
        "shadow_failed": after["errors"] - before["errors"],
        "shadow_dropped": after["dropped"] - before["dropped"],
    }


def drop_rate(compared: int, failed: int, dropped: int) -> float | None:
    total = compared + failed + dropped
    return dropped / total if total else None

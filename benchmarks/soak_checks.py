"""End-of-soak checks: process memory, registry integrity, audit and served-state consistency."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx


def process_tree(parent: int) -> list[int]:
    """``parent`` and its live descendants (uvicorn's supervisor, workers, trackers)."""
    found = [parent]
    index = 0
    while index < len(found):
        pid = found[index]
        index += 1
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
    return found


def rss_kib(pids: Sequence[int]) -> dict[str, int]:
    """VmRSS (KiB) per pid from /proc/<pid>/status; gone processes are left out."""
    sizes = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes[str(pid)] = int(line.split()[1])
    return sizes


def integrity(database: Path) -> str:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def registry_facts(home: Path, model: str, actor: str) -> dict[str, Any]:
    """Production versions, the stored deployment, and the driver's audit entries."""
    from registry.sqlite.store import open_registry

    registry = await open_registry(home)
    try:
        versions = await registry.list_versions(model)
        deployment = await registry.get_deployment(model)
        entries = await registry.audit(model=model, actor=actor, limit=10_000)
    finally:
        await registry.close()
    return {
        "production": [v.version for v in versions if v.stage.value == "production"],
        "routes": [{"version": r.version, "weight": float(r.weight)} for r in deployment.routes],
        "audit": [{"action": e.action, "after": e.after} for e in reversed(entries)],
    }


def served_states(
    base_url: str, model: str, headers: dict[str, str], workers: int
) -> dict[str, list[dict[str, Any]]]:
    """Traffic routes as each worker serves them (fresh connections until all answered)."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for _ in range(200):
        view = httpx.get(f"{base_url}/admin/models/{model}", headers=headers, timeout=10).json()
        pid = str(view["worker"]["pid"])
        if pid not in seen:
            traffic = httpx.get(
                f"{base_url}/admin/models/{model}/traffic", headers=headers, timeout=10
            )
            seen[pid] = traffic.json()["routes"]
        if len(seen) >= workers:
            break
    return seen


def consistency(
    home: Path,
    model: str,
    actor: str,
    changes: Sequence[list[dict[str, Any]]],
    served: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """Every check with its verdict; ``ok`` is their conjunction."""
    facts = asyncio.run(registry_facts(home, model, actor))
    recorded = [
        [{"version": r["version"], "weight": float(r["weight"])} for r in entry["after"]["routes"]]
        for entry in facts["audit"]
        if entry["action"] == "traffic"
    ]
    expected = [[{**r, "weight": float(r["weight"])} for r in c] for c in changes]
    checks = {
        "integrity_check": integrity(home / "registry.db"),
        "production_versions": facts["production"],
        "audit_entries": len(facts["audit"]),
        "changes_made": len(changes),
        "every_change_audited_once": recorded == expected and len(facts["audit"]) == len(changes),
        "served_by_worker": served,
        "served_equals_registry": bool(served)
        and all(routes == facts["routes"] for routes in served.values()),
    }
    checks["ok"] = (
        checks["integrity_check"] == "ok"
        and len(facts["production"]) <= 1
        and checks["every_change_audited_once"]
        and checks["served_equals_registry"]
    )
    return checks

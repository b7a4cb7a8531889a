"""The short CI profile of ``python -m benchmarks.soak``: ~20 s of mixed traffic against
``modelgate serve --workers 2`` on a copy of the zoo registry, same invariants as the long
run (no errors, every admin change audited exactly once, at most one production version,
every worker serves the registry's state, integrity ok, no traceback in the server log)."""

from __future__ import annotations

import json

import pytest

from benchmarks.soak import soak

pytestmark = pytest.mark.slow  # the soak harness against a real two-worker server


def test_a_short_soak_keeps_every_invariant(zoo_template, tmp_path):
    out = tmp_path / "soak.json"
    result = soak(20.0, 2, zoo_template, "clf", clients=3, admin_every_s=1.5, out=out)
    assert json.loads(out.read_text())["ok"] == result["ok"]
    assert result["errors"] == {}, result["error_samples"]
    counts = result["requests"]
    for kind in ("predict", "infer", "feedback", "metrics", "admin"):
        assert counts.get(kind, 0) > 0, counts
    checks = result["checks"]
    assert checks["integrity_check"] == "ok"
    assert checks["every_change_audited_once"], checks
    assert checks["changes_made"] >= 3 and checks["audit_entries"] == checks["changes_made"]
    assert len(checks["production_versions"]) == 1
    assert checks["served_equals_registry"] and len(checks["served_by_worker"]) == 2
    assert result["tracebacks_in_log"] == 0
    assert len(result["rss_kib"]["start"]) >= 3  # supervisor + two workers, measured
    assert result["ok"] is True

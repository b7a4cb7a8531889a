"""The published benchmark's scenario table, summary and README rendering, on synthetic runs.

No server and no load here: runs shaped like the runner's records go through the real
summarize / report / plots code (matplotlib writes a real PNG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.plots import plot_scenario
from benchmarks.report import render, render_targets, write_readme
from benchmarks.suite import (
    ALL_SCENARIOS,
    FULL_SCENARIOS,
    QUICK_SCENARIOS,
    SUITE,
    SWEEP_CONNECTIONS,
    uses_mlserver,
)
from benchmarks.summarize import summarize_scenario


def fake_run(server: str, connections: int, rep: int, rps: float, p99_us: float, **extra: Any):
    run = {
        "server": server,
        "connections": connections,
        "workers": 1,
        "rep": rep,
        "requests": int(rps * 3),
        "duration_s": 3.0,
        "rps": rps,
        "latency_us": {"p50": p99_us / 3, "p90": p99_us / 2, "p99": p99_us, "max": p99_us * 2},
        "non_2xx": 0,
        "socket_errors": 0,
        "errors": {},
        "wrk_cpu_cores": 0.2,
        "server_cpu_cores": 0.95,
        "other_cpu_cores": 0.05,
    }
    run.update(extra)
    return run


def scenario_result(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    scenario = SUITE[name]
    result = {
        "name": scenario.name,
        "title": scenario.title,
        "model": scenario.model,
        "connections": list(scenario.connections),
        "workers": list(scenario.workers),
        "servers": [],
        "runs": runs,
    }
    result.update(summarize_scenario(scenario, runs))
    return result


def results_of(*scenarios: dict[str, Any], plots: list[str] | None = None) -> dict[str, Any]:
    return {
        "started_at": "2026-11-27T12:00:00+00:00",
        "file": "benchmarks/results/20261127T120000Z.json",
        "command": "python -m benchmarks",
        "elapsed_s": 600.0,
        "machine": {
            "git_commit": "abc1234",
            "cpu_model": "Test CPU",
            "cores": 2,
            "cores_usable": 2,
            "memory_gib": 24,
            "kernel": "6",
            "python": "3.11",
            "wrk": "wrk 4.1.0",
            "packages": {"onnxruntime": "1.0"},
        },
        "settings": {"wrk_threads": 1, "duration_s": 3, "warmup_s": 1, "repetitions": 3},
        "notes": ["MLServer left out (--no-mlserver)"],
        "scenarios": list(scenarios),
        "plots": plots or [],
    }


def sweep_runs() -> list[dict[str, Any]]:
    runs = []
    for rep in range(3):
        for c in SWEEP_CONNECTIONS:
            runs.append(fake_run("modelgate", c, rep, 6000, 10_000))
            runs.append(fake_run("naive", c, rep, 5000, 12_000))
            runs.append(fake_run("mlserver-sklearn", c, rep, 1000, 9_000 if c == 1 else 50_000))
    return runs


def test_every_sweep_carries_the_issue_targets() -> None:
    for model in ("logreg", "rf100", "mlp"):
        scenario = SUITE[f"sweep-{model}"]
        assert scenario.connections == (1, 4, 16, 64, 256)
        labels = {s.label for s in scenario.servers}
        assert {"naive", "modelgate", "modelgate-shadow", "mlserver-sklearn"} <= labels
        assert uses_mlserver(scenario)
        targets = {(r.numerator, r.denominator, r.metric, r.connections): (r.op, r.target)
                   for r in scenario.ratios if r.target is not None}  # fmt: skip
        assert targets[("modelgate", "mlserver-sklearn", "rps", 64)] == (">=", 5.0)
        assert targets[("modelgate", "naive", "rps", 64)] == (">=", 1.0)
        for c in SWEEP_CONNECTIONS:
            assert targets[("modelgate", "mlserver-sklearn", "p99", c)] == ("<=", 1.0)
    shadow = next(s for s in SUITE["sweep-mlp"].servers if s.label == "modelgate-shadow")
    assert shadow.shadow == (("1.2.0", 1.0),)
    assert dict(shadow.env)["MODELGATE_MONITORING"] == "on"
    assert all(name in ALL_SCENARIOS for name in (*FULL_SCENARIOS, *QUICK_SCENARIOS))


def test_targets_table_marks_pass_fail_and_missing_baselines() -> None:
    sweep = scenario_result("sweep-logreg", sweep_runs())
    table = "\n".join(render_targets(results_of(sweep)))
    # 6000 / 1000 = 6x MLServer at 64 connections
    assert "| sweep-logreg | modelgate/MLServer-sklearn throughput | 64 | 1 | 6.00" in table
    assert "| >= 5 | **PASS** |" in table
    # at 1 connection MLServer's p99 (9 ms) beats modelgate's (10 ms): a failed target
    assert "| sweep-logreg | modelgate/MLServer-sklearn p99 | 1 | 1 | 1.11" in table
    assert "**FAIL**" in table
    # bare was not run: its ratios are reported as not measured, not dropped
    assert "not measured" in "\n".join(render(results_of(sweep)).splitlines())


def test_rollback_row_fails_on_any_failed_request() -> None:
    runs = [
        fake_run("modelgate-rollback", 64, rep, 3000, 20_000, swaps_ok=10, swaps_failed=0)
        for rep in range(3)
    ] + [fake_run("modelgate", 64, rep, 3100, 18_000) for rep in range(3)]
    clean = render_targets(results_of(scenario_result("rollback", runs)))
    assert any("during 30 rollbacks (0 failed)" in row and "**PASS**" in row for row in clean)

    runs[0]["non_2xx"] = 2
    dirty = render_targets(results_of(scenario_result("rollback", runs)))
    assert any("during 30 rollbacks" in row and "| 2 | = 0 | **FAIL**" in row for row in dirty)


def test_shadow_scenario_checks_the_issue_targets_and_reports_the_drop_rate() -> None:
    for name in ("shadow-rf100", "shadow-mlp", "quick-shadow"):
        scenario = SUITE[name]
        assert {s.label for s in scenario.servers} == {"modelgate", "modelgate-shadow"}
        targets = {(r.metric, r.connections): (r.op, r.target) for r in scenario.ratios}
        for c in (16, 64):
            assert targets[("p99", c)] == ("<=", 1.3) and targets[("rps", c)] == (">=", 0.9)
    assert "quick-shadow" in QUICK_SCENARIOS and "shadow-rf100" in FULL_SCENARIOS
    runs = []
    for rep in range(3):
        for c in (16, 64):
            runs.append(fake_run("modelgate", c, rep, 6000, 10_000))
            # p99 1.2x, throughput 0.95x at 16; p99 1.5x at 64 (a miss)
            runs.append(
                fake_run("modelgate-shadow", c, rep, 5700, 12_000 if c == 16 else 15_000,
                         shadow_compared=900, shadow_failed=0, shadow_dropped=100 * (c // 16))
            )  # fmt: skip
    table = render_targets(results_of(scenario_result("shadow-rf100", runs)))
    row = next(r for r in table if "modelgate-shadow/modelgate p99 | 16 " in r)
    assert "| 1.20 (1.20–1.20) | <= 1.3 | **PASS** |" in row
    row = next(r for r in table if "modelgate-shadow/modelgate p99 | 64 " in r)
    assert "| 1.50 (1.50–1.50) | <= 1.3 | **FAIL** |" in row
    # 3 runs x 100 dropped of 3 x 1000 mirrored at 16; 3 x 400 of 3 x 1300 at 64
    assert any("dropped (300 of 3000; 2700 compared, 0 failed) | 16 " in r and "10.0%" in r
               for r in table)  # fmt: skip
    assert any("dropped (1200 of 3900;" in r and "30.8%" in r for r in table)


def test_readme_sections_are_replaced_and_others_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# B\n<!-- load:start -->\nold load\n<!-- load:end -->\n"
        "<!-- swap:start -->\nswap text stays\n<!-- swap:end -->\n"
        "<!-- drift:start -->\nold drift\n<!-- drift:end -->\n"
        "<!-- sweep:start -->\nold sweep\n<!-- sweep:end -->\ntail\n"
    )
    results = results_of(
        scenario_result("sweep-logreg", sweep_runs()),
        plots=["results/20261127T120000Z-sweep-logreg.png"],
    )
    results["drift"] = {
        "file": "benchmarks/results/drift_bench.json",
        "results": [
            {"measure": "(b) PSI", "ns": 6000.0, "min_ns": 5900.0, "target": "<= 10000 ns"}
        ],
        "ratio_guide_over_incremental_psi": 4000.0,
        "targets_met": {"psi_le_10us": True},
        "machine": {"cpu_model": "Test CPU", "cores": 2, "load_average_start": [0.1]},
        "load_average_end": [0.2],
        "command": "python benchmarks/drift_bench.py",
    }
    write_readme(results, readme)
    text = readme.read_text()
    assert "old load" not in text and "old drift" not in text and "old sweep" not in text
    assert "swap text stays" in text and text.endswith("tail\n")
    assert "![20261127T120000Z-sweep-logreg](results/20261127T120000Z-sweep-logreg.png)" in text
    assert "psi_le_10us: PASS" in text
    assert "- Note: MLServer left out (--no-mlserver)" in text


def test_readme_without_markers_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        write_readme(results_of(scenario_result("sweep-logreg", sweep_runs())), readme)


@pytest.mark.slow
def test_sweep_plot_is_a_png(tmp_path: Path) -> None:
    out = plot_scenario(scenario_result("sweep-logreg", sweep_runs()), tmp_path / "s.png")
    assert out is not None
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_scenario(scenario_result("sweep-logreg", []), tmp_path / "none.png") is None


def test_a_baseline_that_answered_fewer_requests_than_connections_has_a_bounded_p99() -> None:
    """MLServer-sklearn on the forest at 256 connections answered 1-5 requests in 2 s: wrk's
    p99 of those few (38 ms) is not its latency; the 250 unanswered ones took > 2 s."""
    runs = sweep_runs()
    for run in runs:
        if run["server"] == "mlserver-sklearn" and run["connections"] == 256:
            run.update(requests=3, rps=1.5, latency_us={"p50": 30e3, "p90": 35e3, "p99": 38e3})
    sweep = scenario_result("sweep-logreg", runs)
    ratio = next(
        r for r in sweep["ratios"]
        if r["denominator"] == "mlserver-sklearn" and r["metric"] == "p99"
        and r["connections"] == 256
    )  # fmt: skip
    # the baseline's p99 is at least the 3 s run: 10 ms / 3 s
    assert ratio["censored"] is True and ratio["passed"] is True
    assert ratio["value"]["median"] == pytest.approx(10_000 / 3e6, abs=1e-4)
    row = next(
        line for line in render_targets(results_of(sweep)) if "| 256 |" in line and "p99" in line
    )
    assert "**PASS** (bound: a server left requests unanswered for the whole run)" in row
    # a run that answered more requests than it has connections is taken as measured
    at_64 = next(
        r for r in sweep["ratios"]
        if r["denominator"] == "mlserver-sklearn" and r["metric"] == "p99"
        and r["connections"] == 64
    )  # fmt: skip
    assert at_64["censored"] is False and at_64["value"]["median"] == pytest.approx(0.2)

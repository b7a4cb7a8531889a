"""benchmarks/request_cost.py: the verdict on the 0.3x target and the README section."""

from __future__ import annotations

from pathlib import Path

from benchmarks import request_cost
from benchmarks.request_cost import STAGE_ROWS, render, verdict, write_readme


def result(null_rps: list[float], mg_rps: list[float], ort_row_us: float) -> dict:
    stages = {
        "stages_us": {key: 1.0 for key, _ in STAGE_ROWS},
        "stages_sum_us": float(len(STAGE_ROWS)),
        "whole_us": {"1": 90.0, "64": 40.0},
        "whole_ort_us": {"1": 30.0, "64": 10.0},
        "ort_row_in_batch_us": ort_row_us,
        "batch_rows": 64,
        "null_us": 1.0,
    }
    runs = {
        "null": [{"rps": r, "non_2xx": 0, "socket_errors": 0} for r in null_rps],
        "modelgate-rf100": [{"rps": r, "non_2xx": 0, "socket_errors": 0} for r in mg_rps],
    }
    out = {
        "stages": {"rf100": stages},
        "throughput": {
            "runs": runs,
            "ratios": {"rf100": [m / n for m, n in zip(mg_rps, null_rps, strict=True)]},
        },
        "settings": {"reps": len(null_rps), "duration_s": 5.0},
        "load_average": [0.1, 0.2],
        "started_at": "2026-12-06T00:00:00+00:00",
        "machine": "test machine",
        "command": "python -m benchmarks.request_cost --out x.json",
    }
    out["verdict"] = verdict(out)
    return out


def test_a_ratio_at_the_target_passes_without_a_reason() -> None:
    done = result([60_000, 64_000, 62_000], [19_000, 20_000, 18_700], ort_row_us=8.0)
    assert done["verdict"]["passed"] and done["verdict"]["reason"] == ""
    assert abs(done["verdict"]["ratio"] - 20_000 / 64_000) < 1e-9  # the median paired ratio
    assert "**PASS**" in render(done) and "Why the target is missed" not in render(done)


def test_a_miss_names_the_gateway_when_onnxruntime_allows_the_target() -> None:
    done = result([64_000], [12_800], ort_row_us=8.0)
    v = done["verdict"]
    assert not v["passed"] and "gateway's own Python work" in v["reason"]
    # 15.6 µs per null request + 8 µs of onnxruntime per row allow ~0.66x
    assert 0.6 < v["ort_bound"] < 0.7
    assert "**FAIL**" in render(done) and v["reason"] in render(done)


def test_a_miss_names_onnxruntime_when_its_run_alone_bounds_the_ratio() -> None:
    done = result([64_000], [6_000], ort_row_us=200.0)
    v = done["verdict"]
    assert not v["passed"] and v["ort_bound"] < 0.3
    assert v["reason"].startswith("onnxruntime's own run bounds it")


def test_the_section_goes_between_its_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    start, end = f"<!-- {request_cost.NAME}:start -->", f"<!-- {request_cost.NAME}:end -->"
    readme.write_text(f"before\n{start}\nold\n{end}\nafter\n")
    write_readme(result([64_000], [20_000], 8.0), readme)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith(f"{end}\nafter\n")
    assert "old" not in text and "| rf100 |" in text


def test_the_time_per_row_the_server_saw_under_load_can_decide_the_bound() -> None:
    done = result([64_000], [6_000], ort_row_us=8.0)
    done["throughput"]["batching"] = {"rf100": {"rows_per_call": 40.0, "ort_us_per_row": 70.0}}
    v = verdict(done)
    assert v["ort_bound"] > 0.3 > v["ort_bound_under_load"]
    assert "in the server under wrk" in v["reason"]
    done["verdict"] = v
    assert "40.0 rows per onnxruntime call, 70.0 µs per row" in render(done)

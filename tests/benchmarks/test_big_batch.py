"""The big-batch benchmark's parts: its bodies against the gateway's own codec, its summary
and verdict, its README section, and wrk_binary.lua against a real ``modelgate serve``."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.big_batch import SCRIPT
from benchmarks.big_batch_bodies import binary_body, json_body, parse_binary_reply, write_bodies
from benchmarks.big_batch_report import TARGET, render, summarize, write_section
from benchmarks.wrk import run_wrk
from gateway.dataplane.codecs.oip import decode_infer_request, encode_infer_response
from tests.gateway.dataplane.test_codec_oip import numeric_sig
from tests.support.gateway_process import running_server

ROWS = np.random.default_rng(3).normal(size=(1000, 4)).astype(np.float32)
SIGNATURE = numeric_sig(4, max_rows=4096)  # a binary classifier of 4 FP32 features


def test_binary_bodies_are_aligned_and_decode_as_a_view() -> None:
    body, header_length = binary_body(ROWS)
    assert header_length % 8 == 0
    request = decode_infer_request(body, header_length, SIGNATURE)
    feed = request.feeds["input"]
    assert np.shares_memory(feed, np.frombuffer(body, np.uint8))
    np.testing.assert_array_equal(feed, ROWS)
    assert request.binary_outputs == {"label", "probabilities"}
    unpadded, length = binary_body(ROWS, align=1)
    assert unpadded[length:] == body[header_length:]
    plain = decode_infer_request(json_body(ROWS), None, SIGNATURE)
    np.testing.assert_array_equal(plain.feeds["input"], ROWS)


def test_binary_replies_parse_back_to_the_outputs() -> None:
    body, header_length = binary_body(ROWS)
    request = decode_infer_request(body, header_length, SIGNATURE)
    outputs = {
        "label": np.arange(1000, dtype=np.int64) % 2,
        "probabilities": np.linspace(0, 1, 2000, dtype=np.float32).reshape(1000, 2),
    }
    reply, length = encode_infer_response("m", "1", None, outputs, SIGNATURE, request)
    assert length is not None
    parsed = parse_binary_reply(reply, length)
    for name, want in outputs.items():
        assert parsed[name].dtype == want.dtype and np.array_equal(parsed[name], want)
    with pytest.raises(ValueError, match="bytes after the last output"):
        parse_binary_reply(reply + b"x", length)


def test_the_bodies_file_frames_each_body(tmp_path: Path) -> None:
    binary = binary_body(ROWS[:3])
    path = write_bodies(tmp_path / "bodies.bin", [binary, (json_body(ROWS[:2]), 0)])
    data = path.read_bytes()
    entries, offset = [], 0
    while offset < len(data):
        end = data.index(b"\n", offset)
        header_length, size = map(int, data[offset:end].split())
        entries.append((data[end + 1 : end + 1 + size], header_length))
        offset = end + 1 + size
    assert entries == [binary, (json_body(ROWS[:2]), 0)]


def run(rep: int, kind: str, conns: int, ratio: float, other: float = 0.0) -> dict[str, Any]:
    served = {
        "rows_per_s": 10_000.0 * ratio, "requests": 100, "p50_ms": 9.0, "p99_ms": 12.0,
        "non_2xx": 0, "socket_errors": 0, "server_cores": 1.1, "server_cpu_ms_per_request": 9.5,
        "wrk_cores": 0.02, "wrk_us_per_request": 150.0, "other_cores": other,
    }  # fmt: skip
    baseline = {"rows_per_s": 10_000.0, "other_cores": 0.0}
    return {"rep": rep, "kind": kind, "conns": conns, "ratio": ratio,
            "baseline": baseline, "modelgate": served}  # fmt: skip


SPLIT = {
    "decode_us": 20.0, "decode_unaligned_us": 30.0, "run_us": 8000.0, "encode_us": 8.0,
    "monitoring_us": 300.0, "json_decode_us": 3000.0, "json_encode_us": 60.0,
    "decode_is_view_on_body": True, "batcher_mode": "inline", "max_batch_size": 64,
}  # fmt: skip


def results(model_runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    models = {}
    for model, runs in model_runs.items():
        res = {"description": model, "intra_op_threads": 1, "runs": runs, "split": SPLIT}
        res["summary"] = summarize(res)
        models[model] = res
    return {
        "command": "python -m benchmarks.big_batch --quick --out x.json",
        "file": "x.json",
        "started_at": "2026-12-06T00:00:00+00:00",
        "machine": {"cpu_model": "cpu", "cores": 2, "git_commit": "abc"},
        "profile": {"reps": 2, "duration_s": 2.0, "baseline_s": 1.0},
        "models": models,
    }


def test_the_verdict_is_taken_at_the_peak_with_a_reason_for_a_miss() -> None:
    passing = [run(r, "binary", c, q) for r in (0, 1) for c, q in ((1, 0.6), (4, 0.9))]
    failing = [run(r, "binary", c, q) for r in (0, 1) for c, q in ((1, 0.5), (4, 0.6))]
    failing += [run(r, "json", 4, 0.3, other=0.9) for r in (0, 1)]
    out = results({"fast": passing, "slow": failing})
    fast, slow = out["models"]["fast"]["summary"], out["models"]["slow"]["summary"]
    assert (fast["peak_conns"], fast["ratio"]["median"], fast["met"]) == (4, 0.9, True)
    assert (slow["peak_conns"], slow["met"]) == (4, False)
    assert "at 4 connections the server used 1.10 cores" in slow["reason"]
    assert not slow["disturbed"]  # the disturbed JSON runs are not the peak
    text = render(out)
    assert "| 0.90x (0.90-0.90) at 4 connections | PASS |" in text
    assert "| 0.60x (0.60-0.60) at 4 connections | FAIL: at 4 connections" in text
    assert f">= {TARGET}x" in text and "| slow | json | 4 |" in text


def test_errors_and_disturbance_show_in_the_verdict() -> None:
    runs = [run(0, "binary", 4, 0.95, other=0.6)]
    broken = copy.deepcopy(runs)
    broken[0]["modelgate"]["non_2xx"] = 3
    out = results({"noisy": runs, "broken": broken})
    noisy, failed = out["models"]["noisy"]["summary"], out["models"]["broken"]["summary"]
    assert noisy["met"] and noisy["disturbed"]
    assert not failed["met"] and failed["reason"] == "3 failed requests at 4 connections"
    assert "PASS (disturbed" in render(out)


def test_the_section_goes_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("head\n<!-- big_batch:start -->\nold\n<!-- big_batch:end -->\ntail\n")
    write_section("new table\n", readme)
    assert readme.read_text() == (
        "head\n<!-- big_batch:start -->\nnew table\n<!-- big_batch:end -->\ntail\n"
    )
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- big_batch:start -->"):
        write_section("x", readme)


@pytest.mark.slow  # starts modelgate serve and wrk
def test_wrk_sends_binary_and_json_bodies_a_server_accepts(zoo_template, tmp_path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    home = Path(shutil.copytree(zoo_template, tmp_path / "home"))
    bodies = write_bodies(tmp_path / "bodies.bin", [binary_body(ROWS), (json_body(ROWS), 0)])
    with running_server(home, tmp_path / "server.log") as server:
        result = run_wrk(
            "wrk",
            f"{server.url}/v2/models/clf/infer",
            bodies,
            connections=2,
            duration_s=1.0,
            script=SCRIPT,
        )
    assert result.requests > 0
    # the two bodies alternate: a broken frame or header of either would answer 4xx
    assert result.non_2xx == 0 and result.socket_errors == 0


def test_the_suite_runs_it_and_the_readme_has_its_section() -> None:
    from benchmarks.big_batch_report import README
    from benchmarks.extras import EXTRAS

    (extra,) = [e for e in EXTRAS if e.name == "big_batch"]
    assert extra.module == "big_batch"
    text = README.read_text()
    assert text.index("<!-- big_batch:start -->") < text.index("<!-- big_batch:end -->")

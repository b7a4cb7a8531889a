"""The pure parts of the hundred-model benchmark (benchmarks/scale.py): traffic and verdicts."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from benchmarks import scale


def test_uniform_and_zipf_shares():
    uniform = scale.shares(10, "uniform")
    zipf = scale.shares(10, "zipf")
    assert uniform.sum() == pytest.approx(1.0) and zipf.sum() == pytest.approx(1.0)
    assert set(uniform.round(12)) == {0.1}
    assert list(zipf) == sorted(zipf, reverse=True) and zipf[0] > 4 * zipf[9]


def test_the_request_file_spreads_over_the_models_with_valid_bodies(tmp_path: Path):
    names = [f"m{i:03d}" for i in range(9)]
    families = [scale.family_of(i) for i in range(9)]
    path = tmp_path / "requests.txt"
    scale.write_requests(path, names, "zipf")
    lines = path.read_text().splitlines()
    assert len(lines) == scale.SEQUENCE
    paths = {line.split("\t", 1)[0] for line in lines}
    assert paths == {f"/v2/models/{n}/infer" for n in names}
    body = orjson.loads(lines[0].split("\t", 1)[1])
    assert body["inputs"][0]["shape"] == [1, 30]
    shares = scale.family_shares(names, families, path)
    assert set(shares) == set(scale.ORDER) and sum(shares.values()) == pytest.approx(1.0)


def _result(many_rps: float, many_p99: float, failed: int) -> dict:
    one = {"rps": 1000.0, "p99_ms": 10.0}
    row = {"rps": many_rps, "rps_range": [many_rps, many_rps], "p99_ms": many_p99}
    return {
        "versions": 200,
        "models": 100,
        "shares": {"uniform": {"logreg": 0.5, "forest": 0.5}, "zipf": {"logreg": 1.0}},
        "load": {
            "many:uniform": row,
            "many:zipf": row,
            "one-logreg:logreg": one,
            "one-forest:forest": {"rps": 500.0, "p99_ms": 20.0},
        },
        "startup": {
            "threads_end": 12,
            "listening_s": 5.0,
            "first_model_ready_s": 5.1,
            "ready_s": 40.0,
        },
        "single": {"logreg": {"threads_after_traffic": 12}},
        "rollback": {
            "non_2xx": failed,
            "socket_errors": 0,
            "swaps_failed": 0,
            "swaps_ok": 5,
            "requests": 1000,
        },
    }


def test_the_one_model_reference_of_a_mix_and_the_verdicts():
    result = _result(many_rps=600.0, many_p99=25.0, failed=0)
    # half the requests at 1000 req/s, half at 500: 1 / (0.5/1000 + 0.5/500)
    rps, p99 = scale.reference(result, "uniform")
    assert rps == pytest.approx(666.67, rel=1e-3) and p99 == 20.0
    verdicts = {t["target"]: t["pass"] for t in scale.judge(result)}
    assert verdicts["throughput, uniform: >= 0.8x one model"] is True  # 0.9x
    assert verdicts["p99, uniform: <= 1.5x one model"] is True  # 1.25x
    assert verdicts["throughput, zipf: >= 0.8x one model"] is False  # 0.6x of logreg alone
    assert verdicts["p99, zipf: <= 1.5x one model"] is False  # 2.5x
    assert all(v for k, v in verdicts.items() if k.startswith(("threads", "start-up", "hot")))
    failing = {t["target"]: t["pass"] for t in scale.judge(_result(600.0, 25.0, failed=3))}
    assert failing["hot swap and rollback under load: 0 failed requests"] is False


def test_the_unbatched_control_tells_how_much_of_the_gap_batching_explains():
    result = _result(many_rps=300.0, many_p99=25.0, failed=0)
    assert scale.batching_share(result) == []  # a run without the control
    result["load"]["one-logreg-unbatched:logreg"] = {"rps": 500.0, "p99_ms": 12.0}
    result["load"]["one-forest-unbatched:forest"] = {"rps": 250.0, "p99_ms": 30.0}
    result["shares"]["zipf"] = {"logreg": 0.5, "forest": 0.5}
    uniform, _zipf = scale.batching_share(result)
    # batched 666.67 req/s for the mix; unbatched 1 / (0.5/500 + 0.5/250) = 333.33
    assert uniform == (
        "uniform: one model 667 req/s batched, 333 with batching off (0.50x); "
        "100 models 300 (0.90x the unbatched one-model figure)"
    )

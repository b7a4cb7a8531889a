"""Multiprocess mode with real worker processes sharing one PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.monitoring.metrics.multiproc import check_value_class
from gateway.monitoring.metrics.prometheus import (
    MetricsRegistry,
    mark_process_dead,
    prepare_multiprocess_dir,
    sweep_dead_processes,
)

# A gateway worker in miniature: records known traffic through the public API, flushes,
# then answers commands on stdin (render / unbind / exit). Warnings are errors in it too
# (prometheus_client warns when .remove() is used in multiprocess mode).
WORKER = r"""
import json, sys
import numpy as np
from gateway.monitoring.metrics.prometheus import ROUTE_STICKY, ROUTE_WEIGHTED, get_metrics

n_ok = int(sys.argv[1])
psi, accuracy, weight = (float(x) for x in sys.argv[2:5])
metrics = get_metrics()
vm = metrics.bind_variant("iris", "1.0.0", ("setosa", "versicolor", "virginica"))
for i in range(n_ok):
    vm.record_request(ROUTE_WEIGHTED, 200, 100_000)
    vm.record_batch(1, 20_000)
    vm.record_predictions(1, np.array([i % 3]), np.array([0.5 if i % 2 else 0.9]))
vm.record_request(ROUTE_STICKY, 503, 2_000_000)
metrics.set_feature_psi("iris", "1.0.0", "petal_width", psi)
metrics.set_prediction_psi("iris", "1.0.0", psi / 10)
metrics.set_live_accuracy("iris", "1.0.0", accuracy)
metrics.set_shadow_agreement("iris", "1.0.0", accuracy)
metrics.set_traffic_weight("iris", "1.0.0", weight)
metrics.inc_rollback("iris", "manual")
metrics.flush()
print("ready", flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "render":
        print(json.dumps(metrics.render().decode()), flush=True)
    elif command == "unbind":
        metrics.unbind_variant("iris", "1.0.0")
        print("ok", flush=True)
    elif command == "exit":
        break
"""

V = {"model": "iris", "version": "1.0.0"}


class Worker:
    def __init__(self, directory: Path, n_ok: int, psi: float, accuracy: float, weight: float):
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "error", "-c", WORKER]
            + [str(n_ok), str(psi), str(accuracy), str(weight)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"worker died: {self.proc.communicate(timeout=30)[1]}")
        return line.strip()

    def send(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.readline()

    def render(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = json.loads(self.send("render"))
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.name, frozenset(s.labels.items()))
                assert key not in out, f"duplicate series {key}"
                out[key] = s.value
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
            except (AssertionError, BrokenPipeError):
                pass
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return prepare_multiprocess_dir(tmp_path / "prom")


@pytest.fixture
def workers(directory: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.communicate(timeout=30)


def test_two_workers_aggregate_into_one_exposition(directory: Path, workers: list[Worker]) -> None:
    workers.append(Worker(directory, n_ok=30, psi=0.15, accuracy=0.92, weight=90.0))
    workers.append(Worker(directory, n_ok=12, psi=0.25, accuracy=0.81, weight=95.0))
    a, b = workers
    parsed = a.render()

    assert value(parsed, "modelgate_requests_total", **V, route="weighted", code="200") == 42
    assert value(parsed, "modelgate_requests_total", **V, route="sticky", code="503") == 2
    assert value(parsed, "modelgate_request_duration_seconds_count", **V) == 44
    assert value(parsed, "modelgate_request_duration_seconds_sum", **V) == pytest.approx(
        42 * 100e-6 + 2 * 2e-3
    )
    assert value(parsed, "modelgate_request_duration_seconds_bucket", **V, le="0.0001") == 42
    assert value(parsed, "modelgate_batch_size_count", **V) == 42
    assert value(parsed, "modelgate_predictions_total", **V, **{"class": "setosa"}) == 10 + 4
    assert value(parsed, "modelgate_low_confidence_total", **V) == 15 + 6
    assert value(parsed, "modelgate_rollbacks_total", model="iris", reason="manual") == 2
    # gauges: one series per label set (no pid label), folded by each gauge's mode
    assert value(parsed, "modelgate_feature_psi", **V, feature="petal_width") == 0.25  # max
    assert value(parsed, "modelgate_prediction_psi", **V) == pytest.approx(0.025)  # max
    assert value(parsed, "modelgate_live_accuracy", **V) == 0.81  # min
    assert value(parsed, "modelgate_shadow_agreement_ratio", **V) == 0.81  # min
    assert value(parsed, "modelgate_traffic_weight", **V) == 95.0  # most recent
    assert value(parsed, "modelgate_model_loaded", **V) == 1
    assert not any("pid" in dict(labels) for _, labels in parsed)
    assert b.render() == parsed  # any worker serves the same totals

    # a worker exits: its counts stay in the totals, its gauges leave with it
    b.stop()
    mark_process_dead(b.pid, directory)
    parsed = a.render()
    assert value(parsed, "modelgate_requests_total", **V, route="weighted", code="200") == 42
    assert value(parsed, "modelgate_feature_psi", **V, feature="petal_width") == 0.15
    assert value(parsed, "modelgate_live_accuracy", **V) == 0.92
    assert value(parsed, "modelgate_traffic_weight", **V) == 90.0


def test_unbinding_in_multiprocess_mode_leaves_values_that_read_as_gone(
    directory: Path, workers: list[Worker]
) -> None:
    workers.append(Worker(directory, n_ok=5, psi=0.3, accuracy=0.9, weight=100.0))
    (worker,) = workers
    assert worker.send("unbind") == "ok"  # and no UserWarning (it runs with -W error)
    parsed = worker.render()
    assert value(parsed, "modelgate_model_loaded", **V) == 0
    assert value(parsed, "modelgate_traffic_weight", **V) == 0
    assert math.isnan(value(parsed, "modelgate_feature_psi", **V, feature="petal_width"))
    assert math.isnan(value(parsed, "modelgate_live_accuracy", **V))
    # counters keep their final totals (prometheus_client cannot remove them from files)
    assert value(parsed, "modelgate_requests_total", **V, route="weighted", code="200") == 5
    worker.stop()


@pytest.mark.slow
def test_sweep_drops_the_gauge_files_of_processes_that_are_gone(
    directory: Path, workers: list[Worker]
) -> None:
    workers.append(Worker(directory, n_ok=1, psi=0.1, accuracy=0.9, weight=100.0))
    workers.append(Worker(directory, n_ok=1, psi=0.2, accuracy=0.9, weight=100.0))
    alive, gone = workers
    gone.stop()
    assert any(str(gone.pid) in p.name for p in directory.glob("gauge_live*.db"))
    assert sweep_dead_processes(directory) == [gone.pid]
    assert not any(str(gone.pid) in p.name for p in directory.glob("gauge_live*.db"))
    assert any(str(alive.pid) in p.name for p in directory.glob("gauge_live*.db"))
    assert sweep_dead_processes(directory) == []
    assert list(directory.glob(f"counter_{gone.pid}.db"))  # its counts stay
    parsed = alive.render()
    assert value(parsed, "modelgate_feature_psi", **V, feature="petal_width") == 0.1
    assert value(parsed, "modelgate_requests_total", **V, route="weighted", code="200") == 2


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package 'prometheus'; scripts/test.sh installs it)",
)
def test_promtool_accepts_the_multiprocess_exposition(
    directory: Path, workers: list[Worker]
) -> None:
    workers.append(Worker(directory, n_ok=3, psi=0.1, accuracy=0.9, weight=50.0))
    workers.append(Worker(directory, n_ok=4, psi=0.2, accuracy=0.8, weight=50.0))
    text = json.loads(workers[0].send("render"))
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prepare_multiprocess_dir_creates_and_cleans(tmp_path: Path) -> None:
    fresh = prepare_multiprocess_dir(tmp_path / "a" / "b")
    assert fresh.is_dir()
    (fresh / "counter_123.db").write_bytes(b"old")
    (fresh / "gauge_livemax_123.db").write_bytes(b"old")
    (fresh / "notes.txt").write_text("not ours")
    assert prepare_multiprocess_dir(fresh) == fresh
    assert sorted(p.name for p in fresh.iterdir()) == ["notes.txt"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        prepare_multiprocess_dir(not_a_dir)


def test_mismatched_storage_mode_is_refused(tmp_path: Path) -> None:
    # this test process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR
    with pytest.raises(RuntimeError, match="imported before"):
        MetricsRegistry(multiprocess_dir=tmp_path)
    check_value_class(None)  # the matching case passes
    # and a worker that imported prometheus_client before the variable was set
    script = (
        "import os, sys, prometheus_client\n"
        f"os.environ['PROMETHEUS_MULTIPROC_DIR'] = {str(tmp_path)!r}\n"
        "from gateway.monitoring.metrics.prometheus import get_metrics\n"
        "try:\n    get_metrics()\nexcept RuntimeError as exc:\n    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "imported before" in out.stdout


def test_mark_process_dead_needs_a_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(ValueError, match="no multiprocess directory"):
        mark_process_dead(12345)


def test_one_multiprocess_registry_per_process(directory: Path) -> None:
    script = (
        "from gateway.monitoring.metrics.prometheus import MetricsRegistry, get_metrics\n"
        "assert get_metrics() is get_metrics() and get_metrics().multiprocess\n"
        "try:\n    MetricsRegistry()\nexcept RuntimeError as exc:\n    print(exc)\n"
    )
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "use get_metrics()" in out.stdout

"""``promtool check metrics`` accepts the exposition (lint included), single process."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from gateway.monitoring.metrics.prometheus import (
    ROUTE_CHALLENGER,
    ROUTE_HEADER,
    ROUTE_SHADOW,
    ROUTE_WEIGHTED,
    MetricsRegistry,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package 'prometheus'; scripts/test.sh installs it)",
)


def promtool_check(text: bytes) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text.decode(), capture_output=True, text=True
    )


def busy_registry() -> MetricsRegistry:
    metrics = MetricsRegistry(multiprocess_dir=None)
    clf = metrics.bind_variant("iris", "1.0.0", ("setosa", "versicolor", "virginica"))
    reg = metrics.bind_variant("house-prices", "2.0.0-rc.1+build.5")  # semver with build meta
    for route in (ROUTE_WEIGHTED, ROUTE_HEADER, ROUTE_CHALLENGER, ROUTE_SHADOW):
        clf.record_request(route, 200, 95_000)
    clf.record_request(ROUTE_WEIGHTED, 503, 4_000)
    clf.record_batch(8, 70_000)
    clf.record_predictions(3, np.array([0, 1, 2]), np.array([0.51, 0.7, 0.99]))
    clf.record_input_error("bad_shape")
    clf.record_shadow_dropped(2)
    reg.record_request(ROUTE_WEIGHTED, 200, 15_000_000)
    reg.record_predictions(4)
    metrics.set_feature_psi("iris", "1.0.0", 'petal "width"\\cm', 0.21)  # escaping
    metrics.set_prediction_psi("iris", "1.0.0", 0.03)
    metrics.set_shadow_agreement("iris", "1.0.0", 0.99)
    metrics.set_live_accuracy("iris", "1.0.0", 0.9)
    metrics.set_traffic_weight("iris", "1.0.0", 100.0)
    metrics.inc_rollback("iris", "error_rate")
    metrics.record_input_error("iris", "body_too_large")
    return metrics


@needs_promtool
def test_promtool_accepts_a_busy_exposition() -> None:
    text = busy_registry().render()
    assert b"modelgate_feature_psi" in text and b"modelgate_rollbacks_total" in text
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


@needs_promtool
def test_promtool_accepts_an_idle_exposition() -> None:
    result = promtool_check(MetricsRegistry(multiprocess_dir=None).render())
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_is_a_real_check() -> None:
    """The checker rejects what the contract forbids (a counter without _total)."""
    bad = b"# HELP modelgate_requests x\n# TYPE modelgate_requests counter\nmodelgate_requests 1\n"
    assert promtool_check(bad).returncode != 0

"""Promotion gate decisions on hand-built evaluation reports."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.evaluation.gates import NO_EVALUATION, GateTolerances, check_promotion


def _report(
    value: float = 0.90,
    *,
    metric: str = "roc_auc",
    higher: bool = True,
    dp: float = 0.10,
    eo: float = 0.05,
    p95: float | None = 2.0,
    fingerprint: str | None = "f" * 64,
    columns: tuple[str, ...] = ("gender",),
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "dataset": {"fingerprint": fingerprint, "rows": 1000},
        "primary_metric": {"name": metric, "value": value, "higher_is_better": higher},
        "fairness": {
            "columns": {
                c: {"demographic_parity_difference": dp, "equal_opportunity_difference": eo}
                for c in columns
            }
        },
    }
    if p95 is not None:
        report["operational"] = {"latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95 * 2}}
    return report


def test_better_candidate_passes() -> None:
    result = check_promotion(_report(0.93), _report(0.90))
    assert result.passed and result.reasons == []
    assert result.comparisons["primary_metric"]["worsening"] == pytest.approx(-0.03)


def test_worse_candidate_is_refused() -> None:
    result = check_promotion(_report(0.87), _report(0.90))
    assert not result.passed
    assert len(result.reasons) == 1 and "roc_auc dropped" in result.reasons[0]


def test_drop_within_tolerance_passes_and_tolerance_is_configurable() -> None:
    assert check_promotion(_report(0.895), _report(0.90)).passed
    assert not check_promotion(_report(0.895), _report(0.90), {"primary_metric_drop": 0.001}).passed


def test_lower_is_better_metric_direction() -> None:
    worse = check_promotion(
        _report(5.2, metric="rmse", higher=False), _report(5.0, metric="rmse", higher=False)
    )
    better = check_promotion(
        _report(4.0, metric="rmse", higher=False), _report(5.0, metric="rmse", higher=False)
    )
    assert not worse.passed and "rmse rose" in worse.reasons[0]
    assert better.passed


def test_different_primary_metrics_cannot_be_compared() -> None:
    result = check_promotion(_report(0.9, metric="f1_macro"), _report(0.9))
    assert not result.passed and "differ" in result.reasons[0]


def test_widened_fairness_gap_is_refused() -> None:
    result = check_promotion(_report(0.95, dp=0.16), _report(0.90, dp=0.10))
    assert not result.passed
    assert result.reasons == [
        "demographic_parity_difference on 'gender' widened from 0.1000 to 0.1600 (more than 0.05)"
    ]
    eo = check_promotion(_report(0.95, eo=0.20), _report(0.90, eo=0.05))
    assert not eo.passed and "equal_opportunity_difference" in eo.reasons[0]


def test_small_fairness_change_and_narrowed_gap_pass() -> None:
    assert check_promotion(_report(dp=0.14), _report(dp=0.10)).passed
    assert check_promotion(_report(dp=0.01, eo=0.0), _report(dp=0.10)).passed


def test_fairness_column_not_evaluated_for_candidate_is_refused() -> None:
    result = check_promotion(_report(columns=()), _report(columns=("gender",)))
    assert not result.passed and "not for the candidate" in result.reasons[0]


def test_slower_candidate_is_refused() -> None:
    result = check_promotion(_report(p95=3.2), _report(p95=2.0))
    assert not result.passed and "p95 latency grew" in result.reasons[0]
    assert result.comparisons["latency_p95"]["ratio"] == pytest.approx(1.6)
    assert check_promotion(_report(p95=2.9), _report(p95=2.0)).passed


def test_latency_slack_ignores_tiny_absolute_growth() -> None:
    tol = {"latency_p95_slack_ms": 0.05}
    assert check_promotion(_report(p95=0.04), _report(p95=0.02), tol).passed
    assert not check_promotion(_report(p95=0.04), _report(p95=0.02)).passed


def test_latency_not_measured_is_skipped() -> None:
    result = check_promotion(_report(p95=None), _report())
    assert result.passed and "skipped" in result.comparisons["latency_p95"]


def test_mismatched_fingerprints_are_refused() -> None:
    result = check_promotion(_report(0.99, fingerprint="a" * 64), _report(0.5))
    assert not result.passed
    assert (
        result.reasons[0].startswith(NO_EVALUATION) and "fingerprints differ" in result.reasons[0]
    )


def test_unknown_fingerprint_is_refused() -> None:
    result = check_promotion(_report(fingerprint=None), _report(fingerprint=None))
    assert not result.passed and result.reasons[0].startswith(NO_EVALUATION)


@pytest.mark.parametrize("candidate,production", [(None, {"x": 1}), ({"x": 1}, None), (None, None)])
def test_missing_evaluation_is_refused(candidate: Any, production: Any) -> None:
    result = check_promotion(_report() if candidate else None, _report() if production else None)
    assert not result.passed and result.reasons == [NO_EVALUATION]


def test_several_failures_are_all_reported() -> None:
    result = check_promotion(_report(0.80, dp=0.30, p95=9.0), _report(0.90))
    assert not result.passed and len(result.reasons) == 3
    assert result.to_dict()["passed"] is False


def test_tolerances_are_validated() -> None:
    assert GateTolerances.from_dict({"latency_p95_factor": "2"}).latency_p95_factor == 2.0
    with pytest.raises(ValueError, match="unknown gate tolerances: speed"):
        GateTolerances.from_dict({"speed": 1})
    with pytest.raises(ValueError, match=">= 0"):
        GateTolerances.from_dict({"primary_metric_drop": -1})

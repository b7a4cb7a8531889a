"""evaluate() on real ONNX artifacts (scikit-learn -> converters -> onnxruntime)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn import metrics as skm

from gateway.evaluation.errors import EvaluationError
from gateway.evaluation.evaluator import evaluate
from gateway.evaluation.gates import check_promotion

FP = "d" * 64


def test_binary_report(binary_case) -> None:
    c = binary_case
    y = c.data[c.label].to_numpy()
    when = datetime(2026, 11, 27, tzinfo=UTC)
    report = evaluate(
        c.onnx_bytes, c.schema, c.data, c.label, ["gender", "region"], fingerprint=FP, now=when
    )
    json.dumps(report, allow_nan=False)  # JSON-safe, no NaN
    assert report["created_at"] == "2026-11-27T00:00:00+00:00"
    assert report["dataset"] == {
        "fingerprint": FP,
        "rows": 600,
        "label": "churned",
        "groups": ["gender", "region"],
    }
    block = report["classification"]
    sk_pred = c.estimator.predict(c.data[c.features])
    sk_proba = c.estimator.predict_proba(c.data[c.features])[:, 1]
    assert block["accuracy"] == pytest.approx(skm.accuracy_score(y, sk_pred), abs=1e-9)
    assert block["f1_macro"] == pytest.approx(skm.f1_score(y, sk_pred, average="macro"), abs=1e-9)
    # the ONNX graph computes in float32: ranking metrics agree closely, not bit for bit
    assert block["roc_auc"] == pytest.approx(skm.roc_auc_score(y, sk_proba), abs=1e-4)
    assert block["pr_auc"] == pytest.approx(skm.average_precision_score(y, sk_proba), abs=1e-4)
    assert block["positive_class"] == 1
    assert report["primary_metric"] == {
        "name": "roc_auc",
        "value": block["roc_auc"],
        "higher_is_better": True,
    }
    calibration = report["calibration"]
    assert calibration["brier_score"] == pytest.approx(skm.brier_score_loss(y, sk_proba), abs=1e-5)
    assert sum(b["count"] for b in calibration["reliability"]) == 600
    assert 0.5 <= calibration["mean_confidence"] <= 1.0
    gender = report["fairness"]["columns"]["gender"]
    assert [g["group"] for g in gender["groups"]] == ["f", "m"]
    assert sum(g["count"] for g in gender["groups"]) == 600
    rates = [g["positive_rate"] for g in gender["groups"]]
    assert gender["demographic_parity_difference"] == pytest.approx(max(rates) - min(rates))
    assert len(report["fairness"]["columns"]["region"]["groups"]) == 3
    op = report["operational"]
    assert op["model_size_bytes"] == len(c.onnx_bytes)
    assert op["latency_ms"]["runs"] >= 30
    assert 0 < op["latency_ms"]["p50"] <= op["latency_ms"]["p95"] <= op["latency_ms"]["p99"]
    assert op["throughput"]["rows_per_second"] > 0 and op["throughput"]["batch_size"] == 64
    assert op["memory"]["peak_rss_delta_bytes"] >= 0 and op["process"] == "fresh subprocess"
    assert report["warnings"] == []


def test_multiclass_string_labels_and_column_inputs(multiclass_case) -> None:
    c = multiclass_case
    y = c.data[c.label].to_numpy().astype(str)
    report = evaluate(c.onnx_bytes, c.schema, c.data, c.label, ["segment"], operational=False)
    sk_pred = c.estimator.predict(c.data[c.features]).astype(str)
    block = report["classification"]
    assert block["f1_macro"] == pytest.approx(skm.f1_score(y, sk_pred, average="macro"), abs=1e-9)
    assert report["primary_metric"]["name"] == "f1_macro"
    assert block["positive_class"] == "stay"  # default: the last class
    assert report["fairness"]["positive_class"] == "stay"
    assert block["confusion_matrix"]["labels"] == ["churn", "maybe", "stay"]
    assert block["roc_auc"] is not None and "one-vs-rest" in block["averaging"]
    assert "multiclass" in report["calibration"]["brier_definition"]
    assert "operational" not in report and report["dataset"]["fingerprint"] is None

    chosen = evaluate(
        c.onnx_bytes, c.schema, c.data, c.label, ["segment"], "churn", operational=False
    )
    assert chosen["fairness"]["positive_class"] == "churn"
    churn_rate = np.mean(sk_pred == "churn")
    groups = chosen["fairness"]["columns"]["segment"]["groups"]
    weighted = sum(g["positive_rate"] * g["count"] for g in groups) / len(y)
    assert weighted == pytest.approx(churn_rate)


def test_regression_report(regression_case) -> None:
    c = regression_case
    y = c.data[c.label].to_numpy()
    pred = c.estimator.predict(c.data[c.features])
    report = evaluate(c.onnx_bytes, c.schema, c.data, c.label, ["store"], operational=False)
    block = report["regression"]
    assert block["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), rel=1e-5)
    assert block["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-5)
    assert block["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-5)
    assert report["primary_metric"]["name"] == "rmse"
    assert report["primary_metric"]["higher_is_better"] is False
    store = report["fairness"]["columns"]["store"]
    assert [g["group"] for g in store["groups"]] == ["A", "B"] and store["mae_difference"] >= 0
    assert "calibration" not in report


def test_labels_given_as_floats_and_missing_groups(binary_case) -> None:
    c = binary_case
    data = c.data.copy()
    data[c.label] = data[c.label].astype(float)
    data.loc[:9, "gender"] = None
    report = evaluate(c.onnx_bytes, c.schema, data, c.label, ["gender"], operational=False)
    groups = {g["group"]: g["count"] for g in report["fairness"]["columns"]["gender"]["groups"]}
    assert groups["<missing>"] == 10 and sum(groups.values()) == 600


def test_unknown_labels_are_reported(binary_case) -> None:
    c = binary_case
    data = c.data.copy()
    data.loc[:4, c.label] = 7
    report = evaluate(c.onnx_bytes, c.schema, data, c.label, operational=False)
    assert report["warnings"] == ["5 rows have labels the model cannot predict: [7]"]
    assert 7 in report["classification"]["confusion_matrix"]["labels"]


@pytest.mark.parametrize(
    "mutate,groups,positive,message",
    [
        (lambda d: d.drop(columns=["churned"]), [], None, "label column 'churned' not in the data"),
        (
            lambda d: d.drop(columns=["spend", "age"]),
            [],
            None,
            "feature columns missing from the data: spend, age",
        ),
        (lambda d: d, ["nope"], None, "group columns not in the data: nope"),
        (
            lambda d: d,
            [],
            "maybe",
            "positive class 'maybe' is not one of the model's classes (0, 1)",
        ),
        (
            lambda d: d.assign(churned=d["churned"] + 0.5),
            [],
            None,
            "holds non-integer values",
        ),
        (
            lambda d: d.assign(tenure=d["tenure"].where(d.index > 3)),
            [],
            None,
            "feature column 'tenure' has 4 missing values",
        ),
        (lambda d: d.assign(calls="many"), [], None, "feature column 'calls' is not numeric"),
        (lambda d: d.iloc[:0], [], None, "the data has no rows"),
    ],
)
def test_bad_input_raises_one_line(binary_case, mutate, groups, positive, message) -> None:
    c = binary_case
    with pytest.raises(
        EvaluationError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as err:
        evaluate(c.onnx_bytes, c.schema, mutate(c.data.copy()), c.label, groups, positive)
    assert "\n" not in str(err.value)


def test_corrupt_artifact(binary_case) -> None:
    c = binary_case
    with pytest.raises(EvaluationError, match="onnxruntime cannot load the artifact"):
        evaluate(b"not onnx", c.schema, c.data, c.label)


def test_gate_on_two_real_evaluations(binary_case, weak_binary_case) -> None:
    strong = evaluate(
        binary_case.onnx_bytes,
        binary_case.schema,
        binary_case.data,
        "churned",
        ["gender"],
        fingerprint=FP,
        operational=False,
    )
    weak = evaluate(
        weak_binary_case.onnx_bytes,
        weak_binary_case.schema,
        weak_binary_case.data,
        "churned",
        ["gender"],
        fingerprint=FP,
        operational=False,
    )
    assert strong["primary_metric"]["value"] > weak["primary_metric"]["value"] + 0.1
    refused = check_promotion(weak, strong)
    assert not refused.passed and "roc_auc dropped" in refused.reasons[0]
    accepted = check_promotion(strong, weak)
    assert accepted.passed, accepted.reasons
    assert accepted.comparisons["primary_metric"]["worsening"] < -0.1
    other_data = dict(strong, dataset={**strong["dataset"], "fingerprint": "e" * 64})
    assert not check_promotion(other_data, weak).passed

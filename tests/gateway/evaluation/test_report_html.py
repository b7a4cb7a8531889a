"""The HTML report: written, self-contained, with PNG plots (or tables only without matplotlib)."""

from __future__ import annotations

import base64
import re
import sys

import pytest

from gateway.evaluation.evaluator import evaluate
from gateway.evaluation.report_html import write_html_report

pytest.importorskip("matplotlib")

_IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _images(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in _IMG.findall(page)}


@pytest.mark.slow
def test_classification_page_embeds_the_plots(binary_case, tmp_path) -> None:
    c = binary_case
    report = evaluate(c.onnx_bytes, c.schema, c.data, c.label, ["gender"], fingerprint="abc")
    report = {"model": "churn", "version": "1.2.0", **report}
    path = write_html_report(report, tmp_path / "out" / "evaluation.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Evaluation churn 1.2.0</title>" in page
    images = _images(page)
    assert set(images) == {"ROC curve", "confusion matrix", "reliability diagram", "gender"}
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000 for png in images.values())
    assert "demographic_parity_difference" in page and "abc" in page
    assert "latency p50 / p95 / p99" in page
    assert "matplotlib is not installed" not in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


@pytest.mark.slow
def test_multiclass_and_regression_pages(multiclass_case, regression_case, tmp_path) -> None:
    m = multiclass_case
    report = evaluate(m.onnx_bytes, m.schema, m.data, m.label, ["segment"], operational=False)
    page = write_html_report(report, tmp_path / "m.html").read_text()
    assert len(_images(page)) == 4 and "Positive outcome: class stay." in page
    assert "<td>churn</td>" in page
    r = regression_case
    report = evaluate(r.onnx_bytes, r.schema, r.data, r.label, ["store"], operational=False)
    page = write_html_report(report, tmp_path / "r.html").read_text()
    assert set(_images(page)) == {"residuals", "store"} and "mae_difference" in page


def test_values_are_escaped(regression_case, tmp_path) -> None:
    r = regression_case
    data = r.data.assign(store=r.data["store"].map({"A": "<script>", "B": "b&b"}))
    report = evaluate(r.onnx_bytes, r.schema, data, r.label, ["store"], operational=False)
    page = write_html_report(report, tmp_path / "r.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "b&amp;b" in page


def test_without_matplotlib_the_page_has_tables_only(binary_case, tmp_path, monkeypatch) -> None:
    c = binary_case
    report = evaluate(c.onnx_bytes, c.schema, c.data, c.label, ["gender"], operational=False)
    # a None entry makes the import fail as if matplotlib's Agg backend were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    monkeypatch.delitem(sys.modules, "gateway.evaluation.plots", raising=False)
    page = write_html_report(report, tmp_path / "plain.html").read_text()
    assert "matplotlib is not installed" in page
    assert _images(page) == {} and "<table>" in page and "roc_auc" in page

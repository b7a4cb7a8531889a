"""benchmarks/label_free_cost.py: a real (one-repeat) run, its JSON and its README section."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from benchmarks import label_free_cost
from benchmarks.extras import EXTRAS


def test_a_one_repeat_run_measures_the_multiclass_estimate_and_writes_its_section(
    tmp_path: Path,
) -> None:
    out = tmp_path / "label_free_cost.json"
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- label_free_cost:start -->\nold\n<!-- label_free_cost:end -->\n")
    assert (
        label_free_cost.main(["--repeats", "1", "--classes", "3", "--out", str(out), "--no-report"])
        == 0
    )
    result = orjson.loads(out.read_bytes())
    (three,) = result["multiclass"]
    assert three["classes"] == 3 and result["repeats"] == 1
    # the probability ring: 10,000 float32 rows of 3 columns
    assert three["ring_bytes"] == 3 * 4 * label_free_cost.ROWS
    assert three["ring_bytes_per_class"] == 4 * label_free_cost.ROWS
    # registration-built maps on a covariate-shifted window: the estimate follows the labels
    assert abs(three["estimated_accuracy"] - three["realized_accuracy"]) <= 0.03
    assert 0.5 < three["estimated_roc_auc"] < 1.0
    for key in ("snapshot_ms", "snapshot_without_ring_ms", "estimate_ms", "accuracy_only_ms"):
        spread = three[key]
        assert 0 < spread["min"] <= spread["median"] <= spread["max"], key
    label_free_cost.write_readme(result, readme)
    text = readme.read_text()
    assert text.startswith("before\n<!-- label_free_cost:start -->\n| what (full 10,000-row")
    assert (
        "\nold\n" not in text
        and "| 3 | " in text
        and text.endswith("<!-- label_free_cost:end -->\n")
    )
    assert "load average" in text and "--classes 3" in text


def test_class_counts_outside_the_per_class_map_range_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        label_free_cost.main(["--classes", "2", "--out", str(tmp_path / "x.json"), "--no-report"])
    assert exc.value.code == 2
    assert not (tmp_path / "x.json").exists()


def test_the_suite_runs_it_and_the_readme_has_its_section() -> None:
    (extra,) = [e for e in EXTRAS if e.name == "label_free_cost"]
    assert extra.module == "label_free_cost"
    text = label_free_cost.README.read_text()
    assert text.index("<!-- label_free_cost:start -->") < text.index("<!-- label_free_cost:end -->")

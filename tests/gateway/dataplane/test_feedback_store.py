"""The feedback tables: keys, eviction, expiry, labels, quality, sharing between processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gateway.dataplane.feedback.store import (
    DUPLICATE,
    EXPIRED,
    FOUND,
    UNKNOWN,
    FeedbackStore,
    ModelFeedback,
    VersionLabels,
    hash_is_shared,
    quality_of,
    row_keys,
    stable_key,
    version_tag,
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def remember(tables: ModelFeedback, version: str, ids, preds, n_rows=None, now=1_000_000.0):
    counts = n_rows or [1] * len(ids)
    keys, rows = tables.row_keys(ids, counts)
    tables.remember(version_tag(version), keys, np.asarray(preds, np.float64), rows, now)


def test_found_entries_carry_version_prediction_and_time():
    tables = ModelFeedback("m", 1024, ttl_s=60.0)
    tables.register("1.0.0", "classification", [0, 1])
    remember(tables, "1.0.0", ["a", "b"], [1, 0])
    status, slots = tables.find("b", 1_000_010.0)
    assert status == FOUND and len(slots) == 1
    tag, preds, at = tables.entry(slots)
    assert tag == version_tag("1.0.0") and preds.tolist() == [0.0] and at == 1_000_000.0
    assert tables.find("never-served", 1_000_010.0)[0] == UNKNOWN


def test_expiry_and_duplicates():
    tables = ModelFeedback("m", 1024, ttl_s=60.0)
    remember(tables, "1.0.0", ["a", "b"], [1, 0])
    assert tables.find("a", 1_000_061.0)[0] == EXPIRED
    status, slots = tables.find("b", 1_000_030.0)
    tag, preds, at = tables.entry(slots)
    tables.label(slots, tag, preds, at, np.array([0.0]), 1_000_030.0)
    assert tables.find("b", 1_000_031.0)[0] == DUPLICATE
    assert tables.appended == 1


def test_the_oldest_predictions_leave_first():
    tables = ModelFeedback("m", 16, ttl_s=60.0)
    ids = [f"req-{i}" for i in range(200)]
    for start in range(0, 200, 7):  # several appends, wrapping around the ring
        chunk = ids[start : start + 7]
        remember(tables, "1.0.0", chunk, list(range(start, start + len(chunk))))
    found = {}
    for request_id in ids:
        status, positions = tables.find(request_id, 1_000_000.0)
        if status == FOUND:
            found[request_id] = tables.entry(positions)[1].tolist()
    assert list(found) == ids[-16:]  # exactly the last ``capacity`` rows
    assert found["req-199"] == [199.0] and found["req-184"] == [184.0]


def test_multi_row_requests_keep_every_row():
    tables = ModelFeedback("m", 4096, ttl_s=60.0)
    remember(tables, "1.0.0", ["one", "three", "two"], [5, 1, 2, 3, 8, 9], n_rows=[1, 3, 2])
    status, slots = tables.find("three", 1_000_000.0)
    assert status == FOUND and tables.entry(slots)[1].tolist() == [1.0, 2.0, 3.0]
    assert tables.entry(tables.find("two", 1_000_000.0)[1])[1].tolist() == [8.0, 9.0]
    keys, rows = row_keys(["three"], [3])
    assert len(set(keys.tolist())) == 3 and rows.tolist() == [3, 3, 3]


def test_labels_match_class_labels_of_either_type():
    ints = VersionLabels.of("1.0.0", "classification", [0, 1])
    assert ints.encode(1) == 1.0 and ints.encode("1") == 1.0 and ints.encode(1.0) == 1.0
    assert ints.encode(2) is None and ints.encode("yes") is None and ints.encode([1]) is None
    words = VersionLabels.of("1.0.0", "classification", ["no", "yes"])
    assert words.encode("yes") == 1.0 and words.encode(1) is None
    values = VersionLabels.of("1.0.0", "regression", [])
    assert values.encode(2.5) == 2.5 and values.encode(3) == 3.0
    assert values.encode("2.5") is None and values.encode(True) is None
    assert values.encode(float("nan")) is None


def test_quality_of_classifiers_and_regressors():
    outcomes = np.zeros(6, dtype=[("pred", "f8"), ("label", "f8")])
    outcomes["pred"] = [1, 1, 0, 0, 1, 0]
    outcomes["label"] = [1, 0, 0, 1, 1, 0]
    binary = quality_of(outcomes, VersionLabels.of("v", "classification", [0, 1]))
    assert binary == {"labelled": 6, "accuracy": 4 / 6, "precision": 2 / 3, "recall": 2 / 3}
    three = quality_of(outcomes, VersionLabels.of("v", "classification", [0, 1, 2]))
    assert "precision" not in three and three["accuracy"] == 4 / 6
    mae = quality_of(outcomes, VersionLabels.of("v", "regression", []))
    assert mae == {"labelled": 6, "mae": pytest.approx(2 / 6)}


def test_store_answers_the_rollout_and_retraining_questions():
    clock = Clock()
    store = FeedbackStore(capacity=1000, ttl_s=3600.0, window=100, clock=clock)
    tables = store.model("m")
    tables.register("1.0.0", "classification", [0, 1])
    tables.register("2.0.0", "classification", [0, 1])
    for version, ids, at in (("1.0.0", ["a", "b", "c"], 100.0), ("2.0.0", ["d"], 200.0)):
        remember(tables, version, ids, [1] * len(ids), now=at)
    for request_id, label in (("a", 1), ("b", 0), ("c", 1), ("d", 1)):
        status, slots = tables.find(request_id, 300.0)
        tag, preds, at = tables.entry(slots)
        tables.label(slots, tag, preds, at, np.array([float(label)]), 300.0)
    assert store.live_accuracy("m", "1.0.0", since=0.0) == (pytest.approx(2 / 3), 3)
    assert store.live_accuracy("m", "2.0.0", since=150.0) == (1.0, 1)
    assert store.live_accuracy("m", "1.0.0", since=150.0) == (None, 0)
    assert store.live_accuracy("other", "1.0.0", since=0.0) == (None, 0)
    assert store.labelled_count("m") == 4 and store.labelled_count("m", since=150.0) == 1
    assert store.labelled_count("m", version="1.0.0") == 3


WORKER = r"""
import json, sys
import numpy as np
from gateway.dataplane.feedback.store import FeedbackStore, version_tag
store = FeedbackStore(capacity=4096, ttl_s=3600.0, window=100, directory=sys.argv[1])
tables = store.model("shared")
tables.register("1.0.0", "classification", [0, 1])
if sys.argv[2] == "write":
    ids = [f"req-{i}" for i in range(50)]
    keys, rows = tables.row_keys(ids, [1] * 50)
    tables.remember(version_tag("1.0.0"), keys, np.ones(50), rows, 1000.0)
    print(json.dumps({"stable": tables.stable_keys}))
else:
    found = 0
    for i in range(50):
        status, slots = tables.find(f"req-{i}", 1001.0)
        if status == "found":
            tag, preds, at = tables.entry(slots)
            tables.label(slots, tag, preds, at, np.array([float(i % 2)]), 1001.0)
            found += 1
    print(json.dumps({"found": found, "accuracy": store.live_accuracy("shared", "1.0.0", 0.0)}))
"""


@pytest.mark.parametrize("seeds", [(None, None), ("1234", "1234")])
def test_two_processes_share_the_tables(tmp_path: Path, seeds):
    """Different processes (own string-hash seeds unless PYTHONHASHSEED is fixed) see one
    table: one writes predictions, another labels them, the first reads the accuracy."""

    def run(mode: str, seed: str | None) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
        if seed is not None:
            env["PYTHONHASHSEED"] = seed
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", WORKER, str(tmp_path), mode],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    written = run("write", seeds[0])
    assert written["stable"] is (seeds[0] is None)
    read = run("read", seeds[1])
    assert read["found"] == 50 and read["accuracy"] == [0.5, 50]
    store = FeedbackStore(capacity=4096, ttl_s=3600.0, window=100, directory=tmp_path)
    assert store.model("shared").appended == 50
    assert stable_key("req-1") == stable_key("req-1") != stable_key("req-2")
    assert hash_is_shared({"PYTHONHASHSEED": "7"}) and not hash_is_shared({})

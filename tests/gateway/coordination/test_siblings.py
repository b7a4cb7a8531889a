"""A worker of a run where a sibling finished its start-up loads before it accepts."""

from __future__ import annotations

from pathlib import Path

from gateway.coordination.siblings import SiblingReadiness


def test_nobody_serves_until_a_worker_marks_its_start_up_done(tmp_path: Path) -> None:
    first, replacement = SiblingReadiness(tmp_path), SiblingReadiness(tmp_path)
    assert not first.sibling_serves()
    first.mark_serving()
    assert replacement.sibling_serves()
    replacement.mark_serving()  # a second worker marking again is harmless
    assert first.sibling_serves()


def test_a_new_run_clears_the_previous_runs_marker(tmp_path: Path) -> None:
    SiblingReadiness(tmp_path).mark_serving()
    SiblingReadiness(tmp_path).clear()
    assert not SiblingReadiness(tmp_path).sibling_serves()
    SiblingReadiness(tmp_path).clear()  # nothing to clear is fine


def test_a_single_worker_has_no_siblings() -> None:
    alone = SiblingReadiness(None)
    alone.mark_serving()
    alone.clear()
    assert not alone.sibling_serves()

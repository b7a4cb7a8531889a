"""The control-plane cost benchmark (benchmarks/control_plane_cost.py) on a small real home:
every change rebuilds one route, every figure is measured, the report says the load."""

from __future__ import annotations

from pathlib import Path

from benchmarks import control_plane_cost as bench
from tests.gateway.test_app_many_models import add_models


async def test_each_change_reuses_every_other_route_and_every_figure_is_measured(
    zoo_home: Path,
) -> None:
    names = ["m0", "m1", "m2"]
    await add_models(zoo_home, names)
    result = await bench.measure(zoo_home, names, reps=4, before_reps=1)
    figures = result["figures"]
    # the zoo's three models and the three added: the changed one rebuilt, five reused
    assert result["routes"] == 6 and result["reused_routes"] == 5
    assert set(figures) == set(bench.FIGURES) and len(bench.FIGURES) == 10
    # the loop stall is 0 when the ticker never had to wait
    timed = {key: row for key, row in figures.items() if key != "save_loop_lag_us"}
    assert all(row["median"] > 0 and row["max"] >= row["median"] for row in timed.values())
    assert figures["save_loop_lag_us"]["median"] >= 0
    assert result["saved_view_bytes"] > 0

    result.update(
        command="python -m benchmarks.control_plane_cost --quick",
        models=3,
        versions=6,
        reps=4,
        before_reps=1,
        machine="test machine",
    )
    quiet = bench.render({**result, "other_cores": 0.0})
    assert "`python -m benchmarks.control_plane_cost --quick`" in quiet
    assert "5 of 6 reused" in quiet and "loaded machine" not in quiet
    assert "before: the encode on the loop" in quiet
    assert "**loaded machine**" in bench.render({**result, "other_cores": 1.2})

"""What one model's change costs the event loop of a worker serving a hundred models.

``python -m benchmarks.control_plane_cost [--quick] [--models N] [--reps R] [--out FILE]``.
In process, on the home ``benchmarks/scale.py`` builds (N models, 100; 20 with ``--quick``,
LogisticRegression, RandomForest and HistGradientBoosting in turn, 1.0.0 production and
1.1.0 staging under a 90/10 canary each, a real SQLite registry), a real ``Publisher``
loads every version, then each repetition changes ONE model's traffic (90/10 <-> 80/20,
models in turn) and measures, on a view read after the change:

* the route step of a refresh: rebuilding every model's ``ModelRoute`` (what a refresh
  did before routes were reused) against ``Publisher.build_routes`` (what it does now: only
  the changed model's route is built);
* the whole ``Publisher.refresh`` of that view: wall time and the CPU time of the loop's
  thread (a traffic change loads nothing, so that is the control plane's own work), and
  the same refresh again with every route rebuilt;
* ``SavedView.save`` of that view (what a node on a PostgreSQL registry does after each
  publish; now encoded and written by a worker thread): its wall time, the CPU time the
  loop's thread spends in it (even changes), the longest the loop could not run a 1 ms
  ticker during it (odd changes: a worker thread holding the GIL delays the loop too), and
  the writer's encode alone with its documents cached, as after the first save.

For comparison, the first ``--before-reps`` changes (3) also time the encode as it was
before it moved off the loop (``encode_as_before``: ``dataclasses.asdict`` + ``orjson``,
all on the loop, then only the write in a thread); seconds each with 100 models.

Medians (and max) over the repetitions; the machine's other load (cores busy outside this
process, from /proc/stat) is reported beside them, since a loaded machine stretches every
figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from benchmarks.machine import _cpu_model
from benchmarks.procs import system_busy_s
from benchmarks.scale import SCALE_DIR, build_home, family_of

TICK_S = 0.001
# every figure a run measures (µs per change)
FIGURES = (
    "routes_all_us",
    "routes_reused_us",
    "refresh_wall_us",
    "refresh_loop_cpu_us",
    "refresh_all_loop_cpu_us",
    "encode_us",
    "save_wall_us",
    "save_loop_cpu_us",
    "save_loop_lag_us",
    "encode_before_us",
)


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoopLag:
    """The longest the loop went without running a ``TICK_S`` ticker, beyond the tick."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - TICK_S)
            last = now


def encode_as_before(view: Any, registry: str) -> bytes:
    """The saved view's encode before it moved to the writer thread (on the loop)."""
    from gateway.serving.saved_view import FORMAT

    return orjson.dumps(
        {
            "format": FORMAT,
            "registry": registry,
            "generation": view.generation,
            "models": [asdict(mv) for mv in view.models],
            "states": dict(view.states),
        }
    )


async def _timed(call: Awaitable[Any]) -> tuple[float, float]:
    """(wall s, CPU s of this thread) of awaiting ``call`` (a coroutine not started yet)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    await call
    return time.perf_counter() - wall, time.thread_time() - cpu


async def measure(home: Path, names: list[str], reps: int, before_reps: int) -> dict[str, Any]:
    from gateway.dataplane.shadow import ShadowMirror
    from gateway.dataplane.snapshot import SnapshotHolder
    from gateway.serving.model_state import model_states
    from gateway.serving.publisher import VIEW_STATE_PREFIXES, Publisher, _unloaded_route
    from gateway.serving.saved_view import SavedView
    from gateway.settings import Settings
    from registry.models import Deployment, Route
    from registry.sqlite.store import open_registry

    settings = Settings.from_environ({}, home=str(home), monitoring=False)
    registry = await open_registry(home)
    publisher = Publisher(registry, settings, SnapshotHolder(), ShadowMirror())
    began = time.perf_counter()
    await publisher.refresh()
    loaded_s = time.perf_counter() - began
    saved = SavedView(Path(tempfile.mkdtemp(prefix="control-plane-")), "postgresql://bench")
    rows: dict[str, list[float]] = {key: [] for key in FIGURES}
    reused_counts: list[int] = []
    await saved.save(await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES))
    # the other processes' load while the changes run (loading the versions is excluded)
    busy, own, phase = system_busy_s(), _own_cpu_s(), time.perf_counter()
    try:
        for rep in range(reps):
            name = names[rep % len(names)]
            split = (80.0, 20.0) if (rep // len(names)) % 2 == 0 else (90.0, 10.0)
            routes = (Route("1.0.0", split[0]), Route("1.1.0", split[1]))
            await registry.set_deployment(Deployment(model=name, routes=routes))
            view = await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
            states = model_states(view)
            old = publisher.holder.current

            t = time.perf_counter()
            _all = {
                ms.name: _unloaded_route(ms) if ms.unloaded else publisher._build_route(ms, old)
                for ms in states
            }
            rows["routes_all_us"].append((time.perf_counter() - t) * 1e6)
            t = time.perf_counter()
            step = publisher.build_routes(states, old)
            rows["routes_reused_us"].append((time.perf_counter() - t) * 1e6)
            reused_counts.append(sum(route is old.models.get(n) for n, (_k, route) in step.items()))

            wall, cpu = await _timed(publisher.refresh(view))
            rows["refresh_wall_us"].append(wall * 1e6)
            rows["refresh_loop_cpu_us"].append(cpu * 1e6)
            # the same refresh again, every route rebuilt (what a refresh did before)
            publisher._built.clear()
            _wall, cpu = await _timed(publisher.refresh(view))
            rows["refresh_all_loop_cpu_us"].append(cpu * 1e6)

            if rep < before_reps:
                t = time.perf_counter()
                encode_as_before(view, saved.registry)
                rows["encode_before_us"].append((time.perf_counter() - t) * 1e6)
            t = time.perf_counter()
            for _piece in saved._encoder.pieces(view, saved.registry):
                pass
            rows["encode_us"].append((time.perf_counter() - t) * 1e6)
            # one save per view (a generation is written once): the loop's CPU on even
            # changes, the ticker's longest wait on odd ones (the ticker costs CPU too)
            if rep % 2 == 0:
                wall, cpu = await _timed(saved.save(view))
                rows["save_loop_cpu_us"].append(cpu * 1e6)
            else:
                async with LoopLag() as lag:
                    wall, _cpu = await _timed(saved.save(view))
                rows["save_loop_lag_us"].append(lag.worst * 1e6)
            rows["save_wall_us"].append(wall * 1e6)
        size = saved.path.stat().st_size
        other = (system_busy_s() - busy) - (_own_cpu_s() - own)
        other_cores = round(max(0.0, other) / (time.perf_counter() - phase), 2)
    finally:
        await publisher.close()
        await registry.close()
    return {
        "load_all_s": round(loaded_s, 1),
        "routes": len(states),
        "reused_routes": statistics.median(reused_counts),
        "saved_view_bytes": size,
        "other_cores": other_cores,
        "figures": {
            key: {"median": round(statistics.median(v), 1), "max": round(max(v), 1)}
            for key, v in rows.items()
            if v
        },
    }


def command(args: argparse.Namespace) -> str:
    words = ["python -m benchmarks.control_plane_cost"]
    if args.quick:
        words.append("--quick")
    if args.models is not None:
        words.append(f"--models {args.models}")
    if args.reps is not None:
        words.append(f"--reps {args.reps}")
    if args.before_reps != 3:
        words.append(f"--before-reps {args.before_reps}")
    return " ".join(words)


def render(result: dict[str, Any]) -> str:
    f = result["figures"]

    def cell(key: str) -> str:
        return f"{f[key]['median']:,.0f} (max {f[key]['max']:,.0f})"

    other = result["other_cores"]
    lines = [
        f"Command: `{result['command']}`; {result['models']} models, {result['versions']} "
        f"loaded versions, {result['reps']} changes (one model's traffic each); "
        f"{result['machine']}; other processes kept {other:.2f} of the cores busy during the "
        f"changes" + (" (**loaded machine**: the figures are stretched)." if other > 0.2 else "."),
        "",
        "| per change, µs | median (max) |",
        "| --- | ---: |",
        f"| route step, every model rebuilt | {cell('routes_all_us')} |",
        f"| route step, unchanged routes reused "
        f"({result['reused_routes']:.0f} of {result['routes']} reused) | "
        f"{cell('routes_reused_us')} |",
        f"| `Publisher.refresh`, wall | {cell('refresh_wall_us')} |",
        f"| `Publisher.refresh`, CPU of the loop's thread | {cell('refresh_loop_cpu_us')} |",
        f"| the same refresh, every route rebuilt | {cell('refresh_all_loop_cpu_us')} |",
        f"| saved view: encode ({result['saved_view_bytes'] / 2**20:.1f} MiB; the writer "
        f"thread's work, frozen documents cached) | {cell('encode_us')} |",
        f"| `SavedView.save`, wall (in the background) | {cell('save_wall_us')} |",
        f"| `SavedView.save`, CPU of the loop's thread | {cell('save_loop_cpu_us')} |",
        f"| `SavedView.save`, longest loop stall (1 ms ticker) | {cell('save_loop_lag_us')} |",
    ]
    if "encode_before_us" in f:
        lines.append(
            f"| before: the encode on the loop (`asdict` + `orjson`, first "
            f"{result['before_reps']} changes) | {cell('encode_before_us')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 models, 20 changes")
    parser.add_argument("--models", type=int, default=None, help="default 100 (20 quick)")
    parser.add_argument("--reps", type=int, default=None, help="changes; default 60 (20 quick)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    parser.add_argument("--rebuild", action="store_true", help="build the home again")
    parser.add_argument(
        "--before-reps", type=int, default=3, help="changes that also time the old encode"
    )
    args = parser.parse_args(argv)
    n_models = args.models if args.models is not None else (20 if args.quick else 100)
    reps = args.reps if args.reps is not None else (20 if args.quick else 60)
    if n_models < 1 or reps < 1:
        parser.error("need --models >= 1 and --reps >= 1")
    home = SCALE_DIR / f"control-plane-{n_models}"
    built = home / ".control-plane-built"
    names = [f"m{i:03d}" for i in range(n_models)]
    if not built.exists() or args.rebuild:
        print(f"building {home} ({n_models} models) ...", file=sys.stderr, flush=True)
        names = build_home(home, [family_of(i) for i in range(n_models)])
        built.touch()
    result = asyncio.run(measure(home, names, reps, args.before_reps))
    result.update(
        command=command(args),
        models=n_models,
        versions=2 * n_models,
        reps=reps,
        before_reps=min(reps, args.before_reps),
        machine=f"{_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        load_average=os.getloadavg(),
    )
    print(render(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

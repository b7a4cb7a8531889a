"""The scenario table: which servers run which model at which loads, and which ratios count.

A scenario's servers are measured side by side in one invocation, interleaved per
repetition (ABC, BCA, CAB...), so machine drift hits all of them alike. Results are the
ratios listed here, computed per repetition from the paired runs and reported as the
median with the min-max spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROUTES_90_10 = (("1.0.0", 90.0), ("1.1.0", 10.0))


@dataclass(frozen=True, slots=True)
class ServerSpec:
    label: str  # unique within a scenario; used in results and ratios
    kind: str  # "bare" | "naive" | "modelgate" | "mlserver-sklearn" | "mlserver-onnx"
    description: str
    env: tuple[tuple[str, str], ...] = ()
    # modelgate only: (version, weight %) traffic split; empty = one version, 100 %
    routes: tuple[tuple[str, float], ...] = ()
    # modelgate only: (version, sample fraction) shadow mirrors set in the home's deployment
    shadow: tuple[tuple[str, float], ...] = ()
    # modelgate only: > 0 = an admin client rolls production back every this many seconds
    # while wrk runs (benchmarks/rollback_load.py)
    rollback_every_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Ratio:
    name: str
    numerator: str
    denominator: str
    metric: str  # "rps" (throughput) or "p99" (99th percentile latency)
    connections: int
    workers: int = 1
    target: float | None = None
    op: str = ">="  # how the median must compare with the target
    meaning: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    model: str | None  # None: the servers need no model (bare only)
    servers: tuple[ServerSpec, ...]
    connections: tuple[int, ...]
    workers: tuple[int, ...] = (1,)
    ratios: tuple[Ratio, ...] = field(default=())
    # seconds per measured point when at least this (the rollback scenario needs a run long
    # enough for several swaps); None: the run's --duration
    min_duration_s: float | None = None


BARE = ServerSpec("bare", "bare", "(a) Starlette route, orjson parse, constant answer")
NAIVE = ServerSpec("naive", "naive", "(b) Starlette route, orjson parse, session.run inline")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="rf100-routing",
            title="RandomForest (100 trees): modelgate routing 90/10 vs the naive server",
            model="rf100",
            servers=(
                BARE,
                NAIVE,
                ServerSpec(
                    "modelgate",
                    "modelgate",
                    "(c) modelgate, default settings, routing 1.0.0/1.1.0 at 90/10",
                    routes=ROUTES_90_10,
                ),
            ),
            connections=(16, 64),
            ratios=(
                Ratio(
                    "modelgate/naive throughput",
                    "modelgate",
                    "naive",
                    "rps",
                    64,
                    target=1.0,
                    op=">=",
                    meaning="req/s of modelgate over the naive server",
                ),
                Ratio(
                    "modelgate/naive p99",
                    "modelgate",
                    "naive",
                    "p99",
                    64,
                    target=1.2,
                    op="<=",
                    meaning="p99 of modelgate over the naive server",
                ),
                Ratio(
                    "modelgate/naive throughput",
                    "modelgate",
                    "naive",
                    "rps",
                    16,
                    meaning="same at 16 connections (no target)",
                ),
                Ratio(
                    "modelgate/naive p99",
                    "modelgate",
                    "naive",
                    "p99",
                    16,
                    meaning="same at 16 connections (no target)",
                ),
                Ratio(
                    "naive/bare throughput",
                    "naive",
                    "bare",
                    "rps",
                    64,
                    meaning="share of the bare HTTP limit left once the model runs",
                ),
                Ratio(
                    "modelgate/bare throughput",
                    "modelgate",
                    "bare",
                    "rps",
                    64,
                    meaning="share of the bare HTTP limit modelgate reaches",
                ),
            ),
        ),
        Scenario(
            name="mlp-batching",
            title="MLP (512-512-256): modelgate adaptive batching on vs off",
            model="mlp",
            servers=(
                NAIVE,
                ServerSpec(
                    "modelgate-batch-on",
                    "modelgate",
                    "(c) modelgate, MODELGATE_BATCHING=on",
                    env=(("MODELGATE_BATCHING", "on"),),
                ),
                ServerSpec(
                    "modelgate-batch-off",
                    "modelgate",
                    "(c) modelgate, MODELGATE_BATCHING=off",
                    env=(("MODELGATE_BATCHING", "off"),),
                ),
            ),
            connections=(64,),
            ratios=(
                Ratio(
                    "batching on/off throughput",
                    "modelgate-batch-on",
                    "modelgate-batch-off",
                    "rps",
                    64,
                    target=2.0,
                    op=">=",
                    meaning="req/s with adaptive batching over req/s without",
                ),
                Ratio(
                    "batching on/off p99",
                    "modelgate-batch-on",
                    "modelgate-batch-off",
                    "p99",
                    64,
                    meaning="p99 with batching over p99 without (no target)",
                ),
                Ratio(
                    "modelgate batching/naive throughput",
                    "modelgate-batch-on",
                    "naive",
                    "rps",
                    64,
                    meaning="batching modelgate over the naive server",
                ),
            ),
        ),
        Scenario(
            name="rf100-monitoring",
            # the inference mode is pinned: "auto" times the model at load, and on a busy
            # machine one start may pick the worker thread and the next not
            title="RandomForest (100 trees): modelgate with monitoring on vs off",
            model="rf100",
            servers=(
                ServerSpec(
                    "modelgate-monitoring-on",
                    "modelgate",
                    "(c) modelgate, MODELGATE_MONITORING=on (metrics, drift window, feedback)",
                    env=(("MODELGATE_MONITORING", "on"), ("MODELGATE_INFERENCE_MODE", "inline")),
                ),
                ServerSpec(
                    "modelgate-monitoring-off",
                    "modelgate",
                    "(c) modelgate, MODELGATE_MONITORING=off",
                    env=(("MODELGATE_MONITORING", "off"), ("MODELGATE_INFERENCE_MODE", "inline")),
                ),
            ),
            connections=(64,),
            ratios=(
                Ratio(
                    "monitoring on/off throughput",
                    "modelgate-monitoring-on",
                    "modelgate-monitoring-off",
                    "rps",
                    64,
                    target=0.95,
                    op=">=",
                    meaning="req/s with monitoring over req/s without (budget: -5 % at most)",
                ),
                Ratio(
                    "monitoring on/off p99",
                    "modelgate-monitoring-on",
                    "modelgate-monitoring-off",
                    "p99",
                    64,
                    meaning="p99 with monitoring over p99 without (no target)",
                ),
            ),
        ),
        Scenario(
            name="smoke",
            title="Harness smoke test: the bare server only",
            model=None,
            servers=(BARE,),
            connections=(4,),
        ),
    )
}

DEFAULT_SCENARIOS = ("rf100-routing", "mlp-batching")

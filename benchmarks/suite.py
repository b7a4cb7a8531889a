"""The published benchmark (issue 7): the concurrency sweep against MLServer, batching,
2 workers and rollback under load, plus the ``--quick`` subset.

Scenarios defined here join those of ``benchmarks/scenarios.py`` (``ALL_SCENARIOS``).
Targets, from the issue: modelgate >= 5x MLServer's (scikit-learn runtime) throughput at
64 connections with a lower p99 at every concurrency; >= 1.0x the hand-written server
with routing and monitoring on; the MLP with batching >= 2x modelgate without batching.
"""

from __future__ import annotations

from benchmarks.scenarios import (
    BARE,
    NAIVE,
    ROUTES_90_10,
    SCENARIOS,
    Ratio,
    Scenario,
    ServerSpec,
)

SWEEP_CONNECTIONS = (1, 4, 16, 64, 256)
SHADOW_100 = (("1.2.0", 1.0),)
MLSERVER_LABELS = ("mlserver-sklearn", "mlserver-onnx")

MODELGATE = ServerSpec(
    "modelgate",
    "modelgate",
    "(c) modelgate, routing 1.0.0/1.1.0 at 90/10, monitoring on (its default settings)",
    routes=ROUTES_90_10,
)
MODELGATE_SHADOW = ServerSpec(
    "modelgate-shadow",
    "modelgate",
    "(c') modelgate, routing 90/10 plus shadow of 1.2.0 on 100 % of requests, "
    "MODELGATE_MONITORING=on",
    env=(("MODELGATE_MONITORING", "on"),),
    routes=ROUTES_90_10,
    shadow=SHADOW_100,
)
MLSERVER_SKLEARN = ServerSpec(
    "mlserver-sklearn",
    "mlserver-sklearn",
    "(d) MLServer 1.7.1, stock scikit-learn runtime on the same estimator (.joblib), V2 protocol",
)
MLSERVER_ONNX = ServerSpec(
    "mlserver-onnx",
    "mlserver-onnx",
    "(d') MLServer 1.7.1, onnxruntime runtime on the same .onnx (like-for-like), V2 protocol",
)


def _sweep_ratios(with_bare: bool) -> tuple[Ratio, ...]:
    ratios = [
        Ratio("modelgate/MLServer-sklearn throughput", "modelgate", "mlserver-sklearn", "rps",
              64, target=5.0, meaning="req/s of modelgate over MLServer's scikit-learn runtime"),
        *(
            Ratio("modelgate/MLServer-sklearn p99", "modelgate", "mlserver-sklearn", "p99", c,
                  target=1.0, op="<=", meaning="lower p99 than MLServer at every concurrency")
            for c in SWEEP_CONNECTIONS
        ),
        Ratio("modelgate/naive throughput", "modelgate", "naive", "rps", 64, target=1.0,
              meaning="routing and monitoring on vs the hand-written server"),
        Ratio("modelgate/naive p99", "modelgate", "naive", "p99", 64),
        Ratio("modelgate-shadow/naive throughput", "modelgate-shadow", "naive", "rps", 64,
              meaning="shadow 100 % + monitoring vs the hand-written server"),
        Ratio("modelgate-shadow/modelgate throughput", "modelgate-shadow", "modelgate", "rps",
              64, meaning="cost of mirroring every request to a shadow version"),
        Ratio("modelgate-shadow/modelgate p99", "modelgate-shadow", "modelgate", "p99", 64),
        Ratio("modelgate/MLServer-onnx throughput", "modelgate", "mlserver-onnx", "rps", 64,
              meaning="like-for-like: MLServer running the same ONNX with onnxruntime"),
        Ratio("modelgate/MLServer-onnx p99", "modelgate", "mlserver-onnx", "p99", 64),
        Ratio("modelgate/MLServer-sklearn throughput", "modelgate", "mlserver-sklearn", "rps",
              256),
    ]  # fmt: skip
    if with_bare:
        ratios += [
            Ratio("naive/bare throughput", "naive", "bare", "rps", 64,
                  meaning="share of the bare HTTP limit left once the model runs"),
            Ratio("modelgate/bare throughput", "modelgate", "bare", "rps", 64,
                  meaning="share of the bare HTTP limit modelgate reaches"),
        ]  # fmt: skip
    return tuple(ratios)


def _sweep(model: str, title: str, with_bare: bool) -> Scenario:
    servers = (NAIVE, MODELGATE, MODELGATE_SHADOW, MLSERVER_SKLEARN, MLSERVER_ONNX)
    return Scenario(
        name=f"sweep-{model}",
        title=f"{title}: concurrency sweep, modelgate vs the hand-written server and MLServer",
        model=model,
        servers=((BARE, *servers) if with_bare else servers),
        connections=SWEEP_CONNECTIONS,
        ratios=_sweep_ratios(with_bare),
    )


def _batching(
    connections: tuple[int, ...],
    name: str = "batching",
    model: str = "mlp",
    title: str = "MLP (512-512-256)",
) -> Scenario:
    on = ServerSpec("modelgate-batch-on", "modelgate", "(c) modelgate, MODELGATE_BATCHING=on",
                    env=(("MODELGATE_BATCHING", "on"),))  # fmt: skip
    off = ServerSpec("modelgate-batch-off", "modelgate", "(c) modelgate, MODELGATE_BATCHING=off",
                     env=(("MODELGATE_BATCHING", "off"),))  # fmt: skip
    ratios = [
        Ratio("batching on/off throughput", on.label, off.label, "rps", 64, target=2.0,
              meaning=f"{title}: req/s with adaptive batching over req/s without"),
        Ratio("batching on/off p99", on.label, off.label, "p99", 64),
    ]  # fmt: skip
    ratios += [
        Ratio("batching on/off throughput", on.label, off.label, "rps", c)
        for c in connections
        if c != 64
    ]
    return Scenario(
        name=name,
        title=f"{title}: modelgate adaptive batching on vs off",
        model=model,
        servers=(on, off),
        connections=connections,
        ratios=tuple(ratios),
    )


def _rollback(model: str, name: str = "rollback", duration_s: float | None = 8.0) -> Scenario:
    swapping = ServerSpec(
        "modelgate-rollback",
        "modelgate",
        "(c) modelgate, routing 90/10, production rolled back through "
        "POST /admin/models/{name}/rollback every 100 ms (back to back when one takes "
        "longer) while wrk runs",
        routes=ROUTES_90_10,
        rollback_every_s=0.1,
    )
    return Scenario(
        name=name,
        title="Rollback every 100 ms under load (non-2xx must be 0)",
        model=model,
        servers=(swapping, MODELGATE),
        connections=(64,),
        min_duration_s=duration_s,
        ratios=(
            Ratio(
                "rollback/steady throughput",
                swapping.label,
                "modelgate",
                "rps",
                64,
                meaning="req/s while rolling back every 100 ms over req/s without",
            ),
            Ratio("rollback/steady p99", swapping.label, "modelgate", "p99", 64),
        ),  # fmt: skip
    )


def _shadow(model: str, title: str, name: str = "") -> Scenario:
    """modelgate with a third version mirrored on 100 % against the same server without:
    the mirror must cost the primary answers (almost) nothing (issue 22)."""
    ratios = []
    for c in (16, 64):
        ratios += [
            Ratio("modelgate-shadow/modelgate p99", "modelgate-shadow", "modelgate", "p99", c,
                  target=1.3, op="<=", meaning="p99 with a 100 % shadow over p99 without"),
            Ratio("modelgate-shadow/modelgate throughput", "modelgate-shadow", "modelgate",
                  "rps", c, target=0.9, meaning="req/s with a 100 % shadow over req/s without"),
        ]  # fmt: skip
    return Scenario(
        name=name or f"shadow-{model}",
        title=f"{title}: modelgate with a 100 % shadow vs the same server without",
        model=model,
        servers=(MODELGATE, MODELGATE_SHADOW),
        connections=(16, 64),
        ratios=tuple(ratios),
    )


WORKERS2 = Scenario(
    name="workers2-rf100",
    title="RandomForest (100 trees), 2 workers: modelgate vs the hand-written server",
    model="rf100",
    servers=(NAIVE, MODELGATE),
    connections=(16, 64, 256),
    workers=(2,),
    ratios=(
        Ratio("modelgate/naive throughput", "modelgate", "naive", "rps", 64, workers=2),
        Ratio("modelgate/naive p99", "modelgate", "naive", "p99", 64, workers=2),
        Ratio("modelgate/naive throughput", "modelgate", "naive", "rps", 256, workers=2),
    ),
)

QUICK_SWEEP = Scenario(
    name="quick-logreg",
    title="LogisticRegression: quick check (16 and 64 connections)",
    model="logreg",
    servers=(BARE, NAIVE, MODELGATE, MLSERVER_ONNX),
    connections=(16, 64),
    ratios=(
        Ratio(
            "modelgate/naive throughput",
            "modelgate",
            "naive",
            "rps",
            64,
            target=1.0,
            meaning="routing and monitoring on vs the hand-written server",
        ),
        Ratio("modelgate/MLServer-onnx throughput", "modelgate", "mlserver-onnx", "rps", 64),
        Ratio("modelgate/MLServer-onnx p99", "modelgate", "mlserver-onnx", "p99", 64),
        Ratio("modelgate/bare throughput", "modelgate", "bare", "rps", 64),
    ),  # fmt: skip
)

SUITE: dict[str, Scenario] = {
    s.name: s
    for s in (
        _sweep("logreg", "LogisticRegression (30 features)", with_bare=True),
        _sweep("rf100", "RandomForest (100 trees)", with_bare=False),
        _sweep("mlp", "MLP (512-512-256)", with_bare=False),
        _batching((16, 64, 256)),
        _batching((16, 64, 256), "batching-wide", "mlp-wide", "MLP (1024-1024-512)"),
        WORKERS2,
        _rollback("rf100"),
        _shadow("rf100", "RandomForest (100 trees)"),
        _shadow("mlp", "MLP (512-512-256)"),
        QUICK_SWEEP,
        _batching((64,), name="quick-batching"),
        _rollback("rf100", name="quick-rollback", duration_s=None),
        _shadow("rf100", "RandomForest (100 trees)", name="quick-shadow"),
    )
}
QUICK_SCENARIOS = ("quick-logreg", "quick-batching", "quick-rollback", "quick-shadow")
FULL_SCENARIOS = (
    "sweep-logreg",
    "sweep-rf100",
    "sweep-mlp",
    "batching",
    "batching-wide",
    "workers2-rf100",
    "rollback",
    "shadow-rf100",
    "shadow-mlp",
)

ALL_SCENARIOS: dict[str, Scenario] = {**SCENARIOS, **SUITE}


def uses_mlserver(scenario: Scenario) -> bool:
    return any(spec.label in MLSERVER_LABELS for spec in scenario.servers)

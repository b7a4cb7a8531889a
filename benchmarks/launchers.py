"""How to start each kind of server: the command line, its environment, its readiness path.

Every server listens on 127.0.0.1 with uvicorn on uvloop + httptools, access log off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.models import WORK_DIR, BuiltModel
from benchmarks.procs import HOST, ServerProcess, free_port
from benchmarks.scenarios import ServerSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_PATH = "/v2/health/ready"
# a fixed token keeps `serve` from writing one to the home; the rollback scenario's admin
# client (benchmarks/rollback_load.py) sends it as its bearer token
ADMIN_TOKEN = "benchmark-admin-token"
# MLServer variants (benchmarks/mlserver/): the stock scikit-learn runtime and the ORT one
MLSERVER_KINDS = {"mlserver-sklearn": "sklearn", "mlserver-onnx": "onnx"}

UVICORN_APPS = {"bare": "benchmarks.servers.bare:app", "naive": "benchmarks.servers.naive:app"}


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # no stray settings from the caller's shell leak into a measured server
    for key in [k for k in env if k.startswith("MODELGATE_")]:
        del env[key]
    return env


def uvicorn_command(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", HOST, "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip


def modelgate_command(home: Path, port: int, workers: int) -> list[str]:
    # the `modelgate` console script calls the same function
    return [
        sys.executable, "-m", "gateway.cli.main", "serve",
        "--home", str(home), "--host", HOST, "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


def modelgate_home_path(model: str, spec: ServerSpec) -> Path:
    split = "-".join(f"{v}_{w:g}" for v, w in spec.routes) or "single"
    split += "".join(f"-shadow_{v}_{s:g}" for v, s in spec.shadow)
    # the rollback scenario changes stages in its registry: it gets a home of its own
    split += "-rollback" if spec.rollback_every_s > 0 else ""
    return WORK_DIR / "homes" / f"{model}-{split}"


def launch(
    spec: ServerSpec, model: BuiltModel | None, workers: int, home: Path | None = None
) -> ServerProcess:
    """A ServerProcess ready to start (not started yet)."""
    port = free_port()
    env = server_env()
    if spec.kind in UVICORN_APPS:
        if spec.kind != "bare":
            if model is None:
                raise ValueError(f"server {spec.label} needs a model")
            env["BENCH_MODEL_PATH"] = str(model.onnx_path)
        argv = uvicorn_command(UVICORN_APPS[spec.kind], port, workers)
    elif spec.kind == "modelgate":
        if home is None:
            raise ValueError(f"server {spec.label} needs a modelgate home")
        env["MODELGATE_ADMIN_TOKEN"] = ADMIN_TOKEN
        argv = modelgate_command(home, port, workers)
    elif spec.kind in MLSERVER_KINDS:
        if model is None:
            raise ValueError(f"server {spec.label} needs a model")
        if workers != 1:
            raise ValueError(f"{spec.label}: MLServer runs with its tuned parallel_workers only")
        from benchmarks.mlserver.launch import mlserver_server_process

        variant = MLSERVER_KINDS[spec.kind]
        model_file = model.estimator_path if variant == "sklearn" else model.onnx_path
        return mlserver_server_process(spec.label, variant, model_file, model.name)
    else:
        raise ValueError(f"unknown server kind {spec.kind!r}")
    env.update(dict(spec.env))
    return ServerProcess(spec.label, argv, env, REPO_ROOT, port)


def describe_command(process: ServerProcess) -> str:
    """The server's command line and its non-default environment, for the results file."""
    settings = {k: v for k, v in process.env.items() if k.startswith(("MODELGATE_", "BENCH_"))}
    settings.pop("MODELGATE_ADMIN_TOKEN", None)
    if "BENCH_MODEL_PATH" in settings:
        settings["BENCH_MODEL_PATH"] = os.path.relpath(settings["BENCH_MODEL_PATH"], REPO_ROOT)
    prefix = " ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    shown = {sys.executable: "python", str(process.port): "PORT"}
    argv = [shown.get(arg, arg).replace(f"{REPO_ROOT}{os.sep}", "") for arg in process.argv]
    return f"{prefix} {' '.join(argv)}".strip()

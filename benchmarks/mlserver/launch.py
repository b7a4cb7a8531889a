"""Start MLServer from its own virtual environment on a loopback port, wait for it, stop it.

Each launch writes a fresh model repository (settings.json + <name>/model-settings.json)
into a temporary folder, which is also MLServer's working directory (it reads ``.env`` and
keeps ``.metrics`` there), and removes it on stop.

Requests are the harness's Open Inference Protocol body, byte for byte:
``POST /v2/models/<name>/infer`` with
``{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[...]}]}``.
The scikit-learn runtime decodes the single input to a (1, 30) array whatever its name and
answers ``predict`` (the label, INT64); the ONNX runtime answers ``label`` and
``probabilities``, as the other servers do.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.mlserver.settings import HOST, KINDS, MLServerOptions, write_repository
from benchmarks.mlserver.venv import DEFAULT_VENV, ensure_mlserver_venv, mlserver_executable
from benchmarks.procs import ServerError, ServerProcess, free_port

DEFAULT_NAME = "model"
READY_TIMEOUT_S = 120.0


def infer_path(name: str = DEFAULT_NAME) -> str:
    return f"/v2/models/{name}/infer"


def ready_path(name: str = DEFAULT_NAME) -> str:
    # /v2/health/ready is already 200 while the model list is still empty
    return f"/v2/models/{name}/ready"


def numpy_fitted_copy(estimator_file: Path, target: Path) -> Path:
    """A copy of a joblib'd estimator without ``feature_names_in_``.

    The harness fits on a DataFrame; MLServer's runtime passes an ndarray, for which
    scikit-learn would warn on every call. Without the names the predictions are identical.
    """
    import joblib

    estimator = joblib.load(estimator_file)
    _drop_feature_names(estimator)
    joblib.dump(estimator, target)
    return target


def _drop_feature_names(estimator: object) -> None:
    vars(estimator).pop("feature_names_in_", None)
    for _, step in getattr(estimator, "steps", ()):
        _drop_feature_names(step)


def describe_options(kind: str, options: MLServerOptions) -> str:
    runtime = "SKLearnModel" if kind == "sklearn" else "OnnxRuntimeModel(intra_op=1)"
    batching = (
        f"{options.max_batch_size}/{options.max_batch_time * 1000:g}ms"
        if options.max_batch_size > 1
        else "off"
    )
    return (
        f"runtime={runtime},parallel_workers={options.parallel_workers},"
        f"metrics={'on' if options.metrics else 'off'},batching={batching},debug=off,gzip=off"
    )


@dataclass(slots=True)
class MLServerLaunch:
    """Everything needed to run one MLServer: its command, environment and repository."""

    argv: list[str]
    env: dict[str, str]
    root: Path
    name: str
    kind: str
    port: int
    options: MLServerOptions

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def prepare_mlserver(
    model_file: Path,
    kind: str = "sklearn",
    port: int | None = None,
    *,
    name: str = DEFAULT_NAME,
    options: MLServerOptions | None = None,
    venv: Path = DEFAULT_VENV,
) -> MLServerLaunch:
    """Write the repository and build the command.

    ``model_file`` is a .joblib (sklearn) or .onnx (onnx) file, or a folder holding
    model.joblib or model.onnx (MLServer's well-known names).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown MLServer variant {kind!r}; known: {', '.join(KINDS)}")
    wanted = ".joblib" if kind == "sklearn" else ".onnx"
    if model_file.is_dir():
        model_file = model_file / f"model{wanted}"
    if model_file.suffix != wanted or not model_file.is_file():
        raise ValueError(f"the {kind} variant needs an existing {wanted} file, got {model_file}")
    options = options or MLServerOptions()
    port = port or free_port()
    venv = ensure_mlserver_venv(venv)
    root = Path(tempfile.mkdtemp(prefix=f"mlserver-{kind}-"))
    try:
        served = model_file
        if kind == "sklearn":
            served = numpy_fitted_copy(model_file, root / "model.joblib")
        write_repository(
            root / "repository",
            name=name,
            kind=kind,
            model_file=served,
            http_port=port,
            grpc_port=free_port(),
            metrics_port=free_port(),
            options=options,
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER", "PYTHON"))}
    if kind == "onnx":
        # the custom runtime's module sits next to its model-settings.json
        env["PYTHONPATH"] = str(root / "repository" / name)
    # MLServer ignores these; the harness's describe_command shows BENCH_* in the results
    env["BENCH_MODEL_PATH"] = str(model_file.resolve())
    env["BENCH_MLSERVER"] = describe_options(kind, options)
    argv = [str(mlserver_executable(venv)), "start", str(root / "repository")]
    return MLServerLaunch(argv, env, root, name, kind, port, options)


def start_mlserver(
    model_file: Path,
    kind: str = "sklearn",
    port: int | None = None,
    workers: int | None = None,
    *,
    name: str = DEFAULT_NAME,
    options: MLServerOptions | None = None,
    venv: Path = DEFAULT_VENV,
) -> subprocess.Popen[bytes]:
    """Start MLServer in its own process group (not waiting for it: see wait_ready).

    ``workers`` overrides ``options.parallel_workers``. The launch is kept on the returned
    process as ``proc.mlserver`` so stop_mlserver can remove its repository.
    """
    options = options or MLServerOptions()
    if workers is not None:
        options = replace(options, parallel_workers=workers)
    launch = prepare_mlserver(model_file, kind, port, name=name, options=options, venv=venv)
    log = open(launch.root / "mlserver.log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        launch.argv,
        cwd=launch.root,
        env=launch.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    proc.mlserver = launch  # type: ignore[attr-defined]
    return proc


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def log_tail(proc: subprocess.Popen[bytes], lines: int = 30) -> str:
    launch: MLServerLaunch = proc.mlserver  # type: ignore[attr-defined]
    path = launch.root / "mlserver.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    port: int,
    timeout: float = READY_TIMEOUT_S,
    *,
    name: str = DEFAULT_NAME,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll GET /v2/models/<name>/ready until 200; ServerError on timeout or early exit."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise ServerError(
                f"MLServer exited with {proc.returncode} before it was ready:\n{log_tail(proc)}"
            )
        if _status(port, ready_path(name)) == 200:
            return
        time.sleep(0.2)
    tail = f":\n{log_tail(proc)}" if proc is not None else ""
    raise ServerError(f"MLServer not ready on port {port} after {timeout:.0f} s{tail}")


def stop_mlserver(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the whole process group (HTTP process and inference workers), then SIGKILL."""
    try:
        if proc.poll() is None:
            pgid = os.getpgid(proc.pid)
            os.killpg(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                proc.wait(timeout=grace_s)
            try:
                os.killpg(pgid, signal.SIGKILL)  # stray inference workers
            except ProcessLookupError:
                pass
    finally:
        launch = getattr(proc, "mlserver", None)
        if launch is not None:
            launch.cleanup()


class MLServerProcess(ServerProcess):
    """The harness's ServerProcess for MLServer: model-level readiness, repository cleanup."""

    def __init__(self, label: str, launch: MLServerLaunch) -> None:
        super().__init__(label, launch.argv, launch.env, launch.root, launch.port)
        self.launch = launch

    def start(self, ready_path_: str = "", timeout_s: float = READY_TIMEOUT_S) -> None:
        # the harness passes /v2/health/ready; the model's own ready path is the real signal
        super().start(ready_path(self.launch.name), max(timeout_s, READY_TIMEOUT_S))

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.launch.cleanup()


def mlserver_server_process(
    label: str,
    kind: str,
    model_file: Path,
    name: str,
    options: MLServerOptions | None = None,
) -> MLServerProcess:
    """A ServerProcess (not started) for benchmarks.runner, on a free port."""
    return MLServerProcess(label, prepare_mlserver(model_file, kind, name=name, options=options))

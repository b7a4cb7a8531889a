"""MLServer's two settings files, written per launch into a fresh model repository.

Templates are plain dicts here. Every choice follows MLServer's own docs for speed:
``debug`` off (it turns uvicorn's access log on), GZip off (wrk never asks for gzip, so the
middleware is pure overhead), no tracing, warnings-only logging, gRPC moved to a free
port (it cannot be switched off), Prometheus off by default (its metrics server and its
per-request middleware) and adaptive batching off unless asked for. ``parallel_workers``
is the number of inference processes; 0 runs inference in the HTTP process.

Defaults chosen by measurement on 2 cores (see README.md here): parallel_workers 0 beat 1
and 2 by 1.3-3x in req/s for both runtimes (a single-row call is far cheaper than the
hop to a worker process); metrics on were slower in every paired run; adaptive batching
raised p99, gave the scikit-learn runtime no steady gain and slowed the onnxruntime one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
KINDS = ("sklearn", "onnx")
SKLEARN_IMPLEMENTATION = "mlserver_sklearn.SKLearnModel"
ORT_MODULE = "ort_runtime"
ORT_IMPLEMENTATION = f"{ORT_MODULE}.OnnxRuntimeModel"
ORT_SOURCE = Path(__file__).with_name(f"{ORT_MODULE}.py")
N_FEATURES = 30

QUIET_LOGGERS = ("mlserver", "mlserver.rest", "mlserver.grpc", "uvicorn", "uvicorn.error")
QUIET_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {name: {"level": "WARNING"} for name in (*QUIET_LOGGERS, "uvicorn.access")},
}


@dataclass(frozen=True, slots=True)
class MLServerOptions:
    """Server-wide knobs measured in the report; the defaults are the tuned choice."""

    parallel_workers: int = 0
    metrics: bool = False
    max_batch_size: int = 0  # 0 or 1: adaptive batching off
    max_batch_time: float = 0.0

    def __post_init__(self) -> None:
        if self.parallel_workers < 0:
            raise ValueError("parallel_workers must be >= 0")
        if self.max_batch_size < 0 or self.max_batch_time < 0:
            raise ValueError("max_batch_size and max_batch_time must be >= 0")


def server_settings(
    http_port: int, grpc_port: int, metrics_port: int, options: MLServerOptions
) -> dict[str, Any]:
    return {
        "debug": False,
        "host": HOST,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_endpoint": "/metrics" if options.metrics else None,
        "parallel_workers": options.parallel_workers,
        "gzip_enabled": False,
        "logging_settings": QUIET_LOGGING,
        "load_models_at_startup": True,
    }


def model_settings(
    name: str, kind: str, model_uri: str, options: MLServerOptions
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown MLServer variant {kind!r}; known: {', '.join(KINDS)}")
    settings: dict[str, Any] = {
        "name": name,
        "implementation": SKLEARN_IMPLEMENTATION if kind == "sklearn" else ORT_IMPLEMENTATION,
        "parameters": {"uri": model_uri, "version": "1"},
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, N_FEATURES]}],
    }
    if options.max_batch_size > 1:
        settings["max_batch_size"] = options.max_batch_size
        settings["max_batch_time"] = options.max_batch_time
    return settings


def write_repository(
    root: Path,
    *,
    name: str,
    kind: str,
    model_file: Path,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    options: MLServerOptions,
) -> Path:
    """Lay out ``root/settings.json`` and ``root/<name>/model-settings.json``; return root.

    The ONNX variant gets a copy of ort_runtime.py next to its model settings, where
    MLServer looks for a custom runtime's module.
    """
    model_dir = root / name
    model_dir.mkdir(parents=True, exist_ok=True)
    settings = server_settings(http_port, grpc_port, metrics_port, options)
    (root / "settings.json").write_text(json.dumps(settings, indent=1))
    model = model_settings(name, kind, str(model_file.resolve()), options)
    (model_dir / "model-settings.json").write_text(json.dumps(model, indent=1))
    if kind == "onnx":
        shutil.copyfile(ORT_SOURCE, model_dir / ORT_SOURCE.name)
    return root

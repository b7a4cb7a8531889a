"""Gateway settings: frozen dataclasses built from an environment mapping, in one place.

Every knob of a serving process is a ``MODELGATE_*`` variable read here and nowhere else
(the table is in ``docs/configuration.md``): ``Settings`` for serving and monitoring, with
``LifecycleSettings`` (rollout controller, leader election) and ``RetrainingSettings``
(the retraining trigger) inside it. ``from_environ`` casts every variable and fails at
start-up with one line per bad value, each naming its variable. CLI flags win over the
environment by being passed as ``overrides``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from registry.backend import check_registry_url, is_known_registry_url
from registry.errors import RegistryError
from registry.home import HomePaths, resolve_home

INFERENCE_MODES = ("auto", "inline", "thread")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    """The rollout controller's tick, the leader election's retry period and how often the
    experiment controller looks at running experiments."""

    tick_s: float = 1.0  # MODELGATE_ROLLOUT_TICK_S
    leader_retry_s: float = 1.0  # MODELGATE_LEADER_RETRY_S
    experiment_interval_s: float = 30.0  # MODELGATE_EXPERIMENT_INTERVAL_S


@dataclass(frozen=True, slots=True)
class RetrainingSettings:
    """Where the retraining trigger fires, how often it evaluates, and its base policy."""

    webhook_url: str | None = None
    webhook_token: str | None = None  # sent as "Authorization: Bearer ..." when set
    command: tuple[str, ...] = ()
    cooldown_s: float = 24 * 3600.0
    every_s: float = 300.0
    attempts: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0
    # RetrainingPolicy.for_model's {"field": v, "models": {name: {...}}}, validated there
    policy: Mapping[str, Any] = field(default_factory=dict)
    # live accuracy over labels of the last accuracy_window_s, once min_labels arrived
    accuracy_window_s: float = 24 * 3600.0
    min_labels: int = 100


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    # None: the SQLite file in ``home``; postgresql://...: a registry shared by several nodes
    # (``home`` still holds this node's verified artifact cache)
    registry_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # None: read <home>/admin-token, or generate it there (gateway.admin.auth)
    admin_token: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_rows: int = 4096
    batching: bool = True
    max_batch_size: int = 64
    # 0 = dispatch on the next loop tick when the worker is idle; batches still grow
    # to max_batch_size while a previous batch runs (measured: waiting only adds latency)
    max_batch_delay_ms: float = 0.0
    inference_mode: str = "auto"
    # auto mode: a model whose fastest single-row run (timed at load) takes at most this
    # many µs runs inline, slower ones in a worker thread. One hop to the thread and back
    # cost the loop ~21-25 µs of CPU and ~50 µs of latency here (one request at a time,
    # 100-tree forest vs inline), so below ~40 µs a hop costs about as much as it offloads
    inline_max_us: float = 40.0
    ort_intra_op_threads: int = 1
    # worker threads shared by every thread-mode version of a worker process; 0: one per
    # core this process may run on (gateway/dataplane/pool.py)
    inference_threads: int = 0
    # versions loaded at the same time at start-up and on a refresh (ORT session creation
    # and warm-up are CPU-bound; each model is published as soon as it is ready)
    load_concurrency: int = 0
    shadow_queue: int = 1024
    # share of one core the shadow thread may use; past it copies wait, then are dropped
    shadow_cpu_share: float = 0.1
    poll_interval_ms: int = 250
    ring_capacity: int = 10_000
    # monitoring (metrics on every request, drift windows, health, feedback); off only to
    # measure what it costs
    monitoring: bool = True
    # a prediction whose top-class probability is below this is "low confidence"
    low_confidence: float = 0.6
    # how often the drift / live-accuracy gauges are recomputed (off the request path)
    drift_interval_s: float = 10.0
    drift_psi_threshold: float = 0.2
    drift_min_samples: int = 200
    # > 0: drift and health use only the window's rows of the last this many seconds (a
    # time bound on top of ring_capacity, so a shift is not diluted at low traffic); 0: off
    drift_window_s: float = 0.0
    # health verdict thresholds (GET /admin/models/{name}/health)
    health_max_low_confidence_rate: float = 0.15
    health_max_p95_ms: float = 100.0
    health_max_error_rate: float = 0.01
    health_max_drift_score: float = 0.3
    health_max_drifted_features: int = 5
    # label feedback: predictions remembered per model, how long, accuracy window (labels)
    feedback_capacity: int = 100_000
    feedback_ttl_s: float = 86_400.0
    feedback_window: int = 1000
    # experiment outcomes: how long after a request its outcome is still accepted (the
    # idempotency keys are kept as long)
    outcome_window_s: float = 7 * 86_400.0
    # inference requests answered inside the HTTP protocol (gateway.dataplane.http.fastpath);
    # off: uvicorn's own protocol serves every request through the ASGI app
    fastpath: bool = True
    # the operator console's read-only JSON without the admin token (actions always need it)
    console_public: bool = False
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    retraining: RetrainingSettings = field(default_factory=RetrainingSettings)

    @property
    def paths(self) -> HomePaths:
        return HomePaths(self.home)

    @property
    def max_batch_delay_s(self) -> float:
        return self.max_batch_delay_ms / 1000.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win.

        Overrides whose value is None are ignored, so CLI defaults of None fall back to
        the environment.
        """
        env = os.environ if environ is None else environ
        errors: list[str] = []
        values: dict[str, Any] = {"home": resolve_home(None, env).root}
        values.update(_read(env, _ENV, errors))
        values["lifecycle"] = LifecycleSettings(**_read(env, _LIFECYCLE_ENV, errors))
        values["retraining"] = RetrainingSettings(**_read(env, _RETRAINING_ENV, errors))
        if errors:
            raise SettingsError("\n".join(errors))
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "home":
                value = resolve_home(value, env).root
            values[key] = value
        settings = cls(**values)
        settings.validate()
        return settings

    def with_overrides(self, **overrides: Any) -> Settings:
        changed = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        changed.validate()
        return changed

    def validate(self) -> None:
        """SettingsError with one line per value out of range."""
        life, retrain = self.lifecycle, self.retraining
        checks: list[tuple[bool, str]] = [
            (1 <= self.port <= 65535, "port must be between 1 and 65535"),
            (self.workers >= 1, "workers must be at least 1"),
            (self.max_body_bytes >= 1024, "MODELGATE_MAX_BODY_BYTES must be at least 1024"),
            (self.max_rows >= 1, "MODELGATE_MAX_ROWS must be at least 1"),
            (self.max_batch_size >= 1, "MODELGATE_MAX_BATCH_SIZE must be at least 1"),
            (0 <= self.max_batch_delay_ms <= 1000, "MODELGATE_MAX_BATCH_DELAY_MS must be 0..1000"),
            (
                self.inference_mode in INFERENCE_MODES,
                f"MODELGATE_INFERENCE_MODE must be one of {', '.join(INFERENCE_MODES)}",
            ),
            (self.inline_max_us >= 0, "MODELGATE_INLINE_MAX_US must be >= 0"),
            (self.ort_intra_op_threads >= 1, "MODELGATE_ORT_INTRA_OP_THREADS must be at least 1"),
            (self.inference_threads >= 0, "MODELGATE_INFERENCE_THREADS must be >= 0"),
            (self.load_concurrency >= 0, "MODELGATE_LOAD_CONCURRENCY must be >= 0"),
            (self.shadow_queue >= 1, "MODELGATE_SHADOW_QUEUE must be at least 1"),
            (
                0 < self.shadow_cpu_share <= 1,
                "MODELGATE_SHADOW_CPU_SHARE must be in (0, 1]",
            ),
            (self.poll_interval_ms >= 10, "MODELGATE_POLL_INTERVAL_MS must be at least 10"),
            (
                self.registry_url is None or is_known_registry_url(self.registry_url),
                "MODELGATE_REGISTRY_URL must be a postgresql:// URL (unset: SQLite in the home)",
            ),
            (self.ring_capacity >= 16, "MODELGATE_RING_CAPACITY must be at least 16"),
            (0 < self.low_confidence <= 1, "MODELGATE_LOW_CONFIDENCE must be within (0, 1]"),
            (self.drift_interval_s >= 0.1, "MODELGATE_DRIFT_INTERVAL_S must be at least 0.1"),
            (self.drift_psi_threshold > 0, "MODELGATE_DRIFT_PSI_THRESHOLD must be > 0"),
            (self.drift_min_samples >= 1, "MODELGATE_DRIFT_MIN_SAMPLES must be at least 1"),
            (self.drift_window_s >= 0, "MODELGATE_DRIFT_WINDOW_S must be >= 0 (0: off)"),
            (
                0 <= self.health_max_low_confidence_rate <= 1,
                "MODELGATE_HEALTH_MAX_LOW_CONFIDENCE_RATE must be within [0, 1]",
            ),
            (self.health_max_p95_ms > 0, "MODELGATE_HEALTH_MAX_P95_MS must be > 0"),
            (
                0 <= self.health_max_error_rate <= 1,
                "MODELGATE_HEALTH_MAX_ERROR_RATE must be within [0, 1]",
            ),
            (
                0 <= self.health_max_drift_score <= 1,
                "MODELGATE_HEALTH_MAX_DRIFT_SCORE must be within [0, 1]",
            ),
            (
                self.health_max_drifted_features >= 0,
                "MODELGATE_HEALTH_MAX_DRIFTED_FEATURES must be >= 0",
            ),
            (
                16 <= self.feedback_capacity <= 50_000_000,
                "MODELGATE_FEEDBACK_CAPACITY must be within 16..50000000",
            ),
            (self.feedback_ttl_s > 0, "MODELGATE_FEEDBACK_TTL_S must be > 0"),
            (self.feedback_window >= 1, "MODELGATE_FEEDBACK_WINDOW must be at least 1"),
            (self.outcome_window_s > 0, "MODELGATE_OUTCOME_WINDOW_S must be > 0"),
            (life.tick_s > 0, "MODELGATE_ROLLOUT_TICK_S must be a number of seconds > 0"),
            (life.leader_retry_s > 0, "MODELGATE_LEADER_RETRY_S must be a number of seconds > 0"),
            (
                life.experiment_interval_s > 0,
                "MODELGATE_EXPERIMENT_INTERVAL_S must be a number of seconds > 0",
            ),
            (retrain.cooldown_s >= 0, "MODELGATE_RETRAIN_COOLDOWN_S must be >= 0"),
            (retrain.every_s > 0, "MODELGATE_RETRAIN_EVERY_S must be > 0"),
            (retrain.attempts >= 1, "MODELGATE_RETRAIN_ATTEMPTS must be >= 1"),
            (retrain.backoff_s >= 0, "MODELGATE_RETRAIN_BACKOFF_S must be >= 0"),
            (retrain.backoff_max_s >= 0, "MODELGATE_RETRAIN_BACKOFF_MAX_S must be >= 0"),
            (retrain.timeout_s > 0, "MODELGATE_RETRAIN_TIMEOUT_S must be > 0"),
            (retrain.accuracy_window_s > 0, "MODELGATE_RETRAIN_ACCURACY_WINDOW_S must be > 0"),
            (retrain.min_labels >= 1, "MODELGATE_RETRAIN_MIN_LABELS must be an integer >= 1"),
        ]
        failed = [message for ok, message in checks if not ok]
        if failed:
            raise SettingsError("\n".join(failed))

    def to_environ(self) -> dict[str, str]:
        """The MODELGATE_* variables that rebuild these settings (for uvicorn workers)."""
        out = {"MODELGATE_HOME": str(self.home)}
        for name, (var, _cast) in _ENV.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                out[var] = "on" if value else "off"
            else:
                out[var] = str(value)
        return out


def _read(
    env: Mapping[str, str], table: dict[str, tuple[str, Callable[[str], Any]]], errors: list[str]
) -> dict[str, Any]:
    """The fields of ``table`` whose variable is set; a value that does not cast adds one
    line to ``errors``."""
    values: dict[str, Any] = {}
    for name, (var, cast) in table.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[name] = cast(raw.strip())
        except (TypeError, ValueError) as exc:
            errors.append(f"{var}={raw!r}: {exc}")
    return values


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected an integer") from None


def _number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValueError("expected a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _words(raw: str) -> tuple[str, ...]:
    return tuple(shlex.split(raw))


def _switch(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on or off")


def _mode(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in INFERENCE_MODES:
        raise ValueError(f"expected one of {', '.join(INFERENCE_MODES)}")
    return lowered


def _text(raw: str) -> str:
    return raw


def _registry_url(raw: str) -> str | None:
    try:
        return check_registry_url(raw)
    except RegistryError as exc:
        raise ValueError(str(exc)) from None


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "registry_url": ("MODELGATE_REGISTRY_URL", _registry_url),
    "host": ("MODELGATE_HOST", _text),
    "port": ("MODELGATE_PORT", _int),
    "workers": ("MODELGATE_WORKERS", _int),
    "admin_token": ("MODELGATE_ADMIN_TOKEN", _text),
    "max_body_bytes": ("MODELGATE_MAX_BODY_BYTES", _int),
    "max_rows": ("MODELGATE_MAX_ROWS", _int),
    "batching": ("MODELGATE_BATCHING", _switch),
    "max_batch_size": ("MODELGATE_MAX_BATCH_SIZE", _int),
    "max_batch_delay_ms": ("MODELGATE_MAX_BATCH_DELAY_MS", _number),
    "inference_mode": ("MODELGATE_INFERENCE_MODE", _mode),
    "inline_max_us": ("MODELGATE_INLINE_MAX_US", _number),
    "ort_intra_op_threads": ("MODELGATE_ORT_INTRA_OP_THREADS", _int),
    "inference_threads": ("MODELGATE_INFERENCE_THREADS", _int),
    "load_concurrency": ("MODELGATE_LOAD_CONCURRENCY", _int),
    "shadow_queue": ("MODELGATE_SHADOW_QUEUE", _int),
    "shadow_cpu_share": ("MODELGATE_SHADOW_CPU_SHARE", _number),
    "poll_interval_ms": ("MODELGATE_POLL_INTERVAL_MS", _int),
    "ring_capacity": ("MODELGATE_RING_CAPACITY", _int),
    "monitoring": ("MODELGATE_MONITORING", _switch),
    "low_confidence": ("MODELGATE_LOW_CONFIDENCE", _number),
    "drift_interval_s": ("MODELGATE_DRIFT_INTERVAL_S", _number),
    "drift_psi_threshold": ("MODELGATE_DRIFT_PSI_THRESHOLD", _number),
    "drift_min_samples": ("MODELGATE_DRIFT_MIN_SAMPLES", _int),
    "drift_window_s": ("MODELGATE_DRIFT_WINDOW_S", _number),
    "health_max_low_confidence_rate": ("MODELGATE_HEALTH_MAX_LOW_CONFIDENCE_RATE", _number),
    "health_max_p95_ms": ("MODELGATE_HEALTH_MAX_P95_MS", _number),
    "health_max_error_rate": ("MODELGATE_HEALTH_MAX_ERROR_RATE", _number),
    "health_max_drift_score": ("MODELGATE_HEALTH_MAX_DRIFT_SCORE", _number),
    "health_max_drifted_features": ("MODELGATE_HEALTH_MAX_DRIFTED_FEATURES", _int),
    "feedback_capacity": ("MODELGATE_FEEDBACK_CAPACITY", _int),
    "feedback_ttl_s": ("MODELGATE_FEEDBACK_TTL_S", _number),
    "feedback_window": ("MODELGATE_FEEDBACK_WINDOW", _int),
    "outcome_window_s": ("MODELGATE_OUTCOME_WINDOW_S", _number),
    "fastpath": ("MODELGATE_FASTPATH", _switch),
    "console_public": ("MODELGATE_CONSOLE_PUBLIC", _switch),
}

_LIFECYCLE_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "tick_s": ("MODELGATE_ROLLOUT_TICK_S", _number),
    "leader_retry_s": ("MODELGATE_LEADER_RETRY_S", _number),
    "experiment_interval_s": ("MODELGATE_EXPERIMENT_INTERVAL_S", _number),
}

_RETRAINING_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "webhook_url": ("MODELGATE_RETRAIN_WEBHOOK", _text),
    "webhook_token": ("MODELGATE_RETRAIN_WEBHOOK_TOKEN", _text),
    "command": ("MODELGATE_RETRAIN_COMMAND", _words),
    "cooldown_s": ("MODELGATE_RETRAIN_COOLDOWN_S", _number),
    "every_s": ("MODELGATE_RETRAIN_EVERY_S", _number),
    "attempts": ("MODELGATE_RETRAIN_ATTEMPTS", _int),
    "backoff_s": ("MODELGATE_RETRAIN_BACKOFF_S", _number),
    "backoff_max_s": ("MODELGATE_RETRAIN_BACKOFF_MAX_S", _number),
    "timeout_s": ("MODELGATE_RETRAIN_TIMEOUT_S", _number),
    "policy": ("MODELGATE_RETRAIN_POLICY", _json_object),
    "accuracy_window_s": ("MODELGATE_RETRAIN_ACCURACY_WINDOW_S", _number),
    "min_labels": ("MODELGATE_RETRAIN_MIN_LABELS", _int),
}


def lifecycle_settings(environ: Mapping[str, str]) -> tuple[LifecycleSettings, RetrainingSettings]:
    """Only the lifecycle's groups of ``environ`` (for tools that need no home folder)."""
    errors: list[str] = []
    life = LifecycleSettings(**_read(environ, _LIFECYCLE_ENV, errors))
    retrain = RetrainingSettings(**_read(environ, _RETRAINING_ENV, errors))
    if errors:
        raise SettingsError("\n".join(errors))
    Settings(home=Path("."), lifecycle=life, retraining=retrain).validate()
    return life, retrain

"""The retraining trigger: evaluate each model's retraining policy and fire once per cooldown.

``RetrainingMonitor`` runs in the leader process (``Leader``). Every
``evaluate_every_s`` it decides, for each model's production version, with the pure
``gateway.retraining.policy.should_retrain``; inputs come from a callable the server
supplies (live accuracy, drift score, low-confidence rate, new labels), and the training
date from the version's lineage when the callable leaves it out. When the decision is
positive and the model's last firing is older than its cooldown, the trigger fires: the
webhook and/or the command get the JSON payload (``gateway.retraining.delivery``,
retried with exponential backoff). ``last_fired_at`` is written BEFORE delivery, so a
restart never fires twice within a cooldown (at most once, even if a crash interrupts a
delivery); the outcome of every target is then written and audited
(``retraining.trigger``), shielded from a shutdown arriving at that moment. A shutdown
during the delivery records the firing as ``interrupted`` (the webhook may or may not have
seen it) before the task stops. Nothing raises out of the periodic task.

Configuration:

* the trigger (webhook URL, command, cooldown, retries) is the operator's, from
  ``MODELGATE_RETRAIN_*`` variables (``TriggerConfig.from_environ``): an admin API token
  must not be enough to make the server run a command or call an arbitrary URL;
* the policy thresholds and the cooldown can be overridden per model through the admin API
  (``PUT /admin/models/{name}/retraining``), stored as ``retraining:<model>`` state, on top
  of ``MODELGATE_RETRAIN_POLICY`` (JSON for ``RetrainingPolicy.for_model``) and the defaults.

The firing status lives under ``retraining-status:<model>``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.coordination.background import BackgroundTask, log_failure
from gateway.coordination.leader import FileMutex
from gateway.coordination.leadership import Leader
from gateway.errors import Conflict, InputError
from gateway.retraining.delivery import RetryPolicy, Sleep, deliver
from gateway.retraining.policy import (
    RetrainingDecision,
    RetrainingInputs,
    RetrainingPolicy,
    should_retrain,
    training_date,
)
from gateway.settings import RetrainingSettings, lifecycle_settings
from registry.base import RegistryStore

logger = logging.getLogger("modelgate.retraining")

ACTOR = "retraining-trigger"
MUTEX_FILE = "retraining.lock"
DEFAULT_COOLDOWN_S = 24 * 3600.0
DEFAULT_EVERY_S = 300.0

InputsSource = Callable[[str, str], Awaitable[RetrainingInputs]]


def policy_key(model: str) -> str:
    return f"retraining:{model}"


def status_key(model: str) -> str:
    return f"retraining-status:{model}"


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    webhook_url: str | None = None
    webhook_token: str | None = None  # sent as "Authorization: Bearer ..." when set
    command: tuple[str, ...] = ()
    cooldown_s: float = DEFAULT_COOLDOWN_S
    evaluate_every_s: float = DEFAULT_EVERY_S
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # base policy config: RetrainingPolicy.for_model's {"field": v, "models": {name: {...}}}
    policy: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.webhook_url is not None:
            parts = urllib.parse.urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"MODELGATE_RETRAIN_WEBHOOK: the URL must be http(s)://host/..., got "
                    f"{self.webhook_url!r}"
                )
        if self.cooldown_s < 0 or self.evaluate_every_s <= 0:
            raise ValueError(
                "MODELGATE_RETRAIN_COOLDOWN_S must be >= 0 and MODELGATE_RETRAIN_EVERY_S > 0"
            )
        r = self.retry
        if r.max_attempts < 1 or r.timeout_s <= 0 or r.backoff_initial_s < 0:
            raise ValueError(
                "MODELGATE_RETRAIN_ATTEMPTS must be >= 1, MODELGATE_RETRAIN_TIMEOUT_S > 0 "
                "and MODELGATE_RETRAIN_BACKOFF_S >= 0"
            )
        models = dict(self.policy).get("models") or {}
        try:
            for name in ["-", *models]:
                RetrainingPolicy.for_model(name, self.policy)
        except ValueError as exc:
            raise ValueError(f"MODELGATE_RETRAIN_POLICY: {exc}") from None

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or self.command)

    @classmethod
    def from_settings(cls, settings: RetrainingSettings) -> TriggerConfig:
        return cls(
            webhook_url=settings.webhook_url,
            webhook_token=settings.webhook_token,
            command=settings.command,
            cooldown_s=settings.cooldown_s,
            evaluate_every_s=settings.every_s,
            retry=RetryPolicy(
                max_attempts=settings.attempts,
                backoff_initial_s=settings.backoff_s,
                backoff_max_s=settings.backoff_max_s,
                timeout_s=settings.timeout_s,
            ),
            policy=settings.policy,
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TriggerConfig:
        """The ``MODELGATE_RETRAIN_*`` variables of ``environ`` (read by gateway.settings)."""
        return cls.from_settings(lifecycle_settings(os.environ if environ is None else environ)[1])

    def describe(self) -> dict[str, Any]:
        """For the API: where it fires, without secrets (no query string, no credentials)."""
        webhook = None
        if self.webhook_url:
            parts = urllib.parse.urlsplit(self.webhook_url)
            webhook = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
            webhook += parts.path
        return {
            "webhook": webhook,
            "command": self.command[0] if self.command else None,
            "max_attempts": self.retry.max_attempts,
            "evaluate_every_s": self.evaluate_every_s,
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class RetrainingMonitor:
    def __init__(
        self,
        registry: RegistryStore,
        inputs: InputsSource,
        config: TriggerConfig,
        *,
        home: str | os.PathLike[str],
        leader: Leader | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.registry = registry
        self.inputs = inputs
        self.config = config
        self.mutex_path = Path(home) / MUTEX_FILE
        self.leader = leader
        self.clock = clock
        self.sleep = sleep
        self.errors: dict[str, str] = {}  # model -> last evaluation error in this process
        self._task = BackgroundTask(self.run)

    # --- per-model configuration -------------------------------------------------
    async def overrides(self, model: str) -> dict[str, Any]:
        return dict(await self.registry.get_state(policy_key(model)) or {})

    async def policy_for(self, model: str) -> tuple[RetrainingPolicy, float]:
        stored = await self.overrides(model)
        base = RetrainingPolicy.for_model(model, self.config.policy)
        cooldown = stored.get("cooldown_s")
        policy = base.with_overrides(stored.get("policy") or {})
        return policy, self.config.cooldown_s if cooldown is None else float(cooldown)

    async def set_overrides(self, model: str, payload: Any, *, actor: str) -> dict[str, Any]:
        """Store ``{"policy": {field: value}, "cooldown_s": seconds | null}`` for ``model``."""
        await self.registry.get_model(model)
        if not isinstance(payload, Mapping):
            raise InputError("retraining settings must be a JSON object")
        unknown = sorted(set(payload) - {"policy", "cooldown_s"})
        if unknown:
            raise InputError(f"unknown field {unknown[0]!r} (allowed: cooldown_s, policy)")
        policy = payload.get("policy") or {}
        if not isinstance(policy, Mapping):
            raise InputError("policy must be an object of RetrainingPolicy fields")
        try:
            RetrainingPolicy().with_overrides(policy)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        cooldown = payload.get("cooldown_s")
        if cooldown is not None and (
            isinstance(cooldown, bool)
            or not isinstance(cooldown, int | float)
            or not math.isfinite(cooldown)
            or cooldown < 0
        ):
            raise InputError(f"cooldown_s must be a number of seconds >= 0, got {cooldown!r}")
        stored = {"policy": dict(policy), "cooldown_s": cooldown}
        await self.registry.put_state(
            policy_key(model), stored, actor=actor, reason=f"retraining settings of {model}"
        )
        return stored

    # --- decisions -----------------------------------------------------------------
    async def decide(self, model: str) -> tuple[str, RetrainingDecision, RetrainingPolicy]:
        info = await self.registry.get_model(model)
        if info.production_version is None:
            raise Conflict(f"model {model!r} has no production version to evaluate")
        version = await self.registry.get_version(model, info.production_version)
        inputs = await self.inputs(model, version.version)
        if inputs.trained_at is None:
            inputs = replace(inputs, trained_at=training_date(version.lineage))
        inputs = replace(inputs, now=datetime.fromtimestamp(self.clock(), UTC))
        policy, _ = await self.policy_for(model)
        return version.version, should_retrain(inputs, policy), policy

    async def report(self, model: str) -> dict[str, Any]:
        """``GET /admin/models/{name}/retraining``: the decision now and the trigger's state."""
        version, decision, policy = await self.decide(model)
        _, cooldown = await self.policy_for(model)
        status = await self.registry.get_state(status_key(model)) or {}
        last = status.get("last_fired_at")
        return {
            "model": model,
            "version": version,
            **decision.to_dict(),
            "policy": asdict(policy),
            "trigger": {
                **self.config.describe(),
                "configured": self.config.configured,
                "cooldown_s": cooldown,
                "last_fired_at": None if last is None else _iso(last),
                "next_allowed_at": None if last is None else _iso(last + cooldown),
                "last_fire": status.get("last_fire"),
                "last_error": self.errors.get(model),
            },
        }

    async def evaluate(self, model: str) -> dict[str, Any] | None:
        """Decide, and fire when positive and out of cooldown; the firing record or None."""
        if (await self.registry.get_model(model)).production_version is None:
            return None
        version, decision, _ = await self.decide(model)
        if not decision.retrain or not self.config.configured:
            return None
        _, cooldown = await self.policy_for(model)
        now = self.clock()
        reasons = decision.triggered
        fire: dict[str, Any] = {
            "fired_at": _iso(now),
            "version": version,
            "reasons": reasons,
            "status": "delivering",
            "results": [],
        }
        async with FileMutex(self.mutex_path):  # claim the cooldown slot exactly once
            last = (await self.registry.get_state(status_key(model)) or {}).get("last_fired_at")
            if last is not None and now - last < cooldown:
                return None
            await self._write_status(model, now, fire, f"retraining of {model} triggered")
        payload = {
            "event": "retraining_needed",
            "model": model,
            "version": version,
            "reasons": reasons,
            "values": {r["reason"]: r["value"] for r in decision.reasons},
            "thresholds": {r["reason"]: r["threshold"] for r in decision.reasons},
            "fired_at": fire["fired_at"],
        }
        try:
            results = await deliver(
                payload,
                webhook_url=self.config.webhook_url,
                webhook_token=self.config.webhook_token,
                command=self.config.command,
                policy=self.config.retry,
                sleep=self.sleep,
                clock=self.clock,
            )
        except asyncio.CancelledError:  # shutdown mid-delivery: say so, then stop
            fire = {**fire, "status": "interrupted"}
            why = f"retraining needed ({', '.join(reasons)}): delivery interrupted by shutdown"
            await asyncio.shield(self._record(model, version, now, fire, why))
            raise
        ok = all(r.status == "ok" for r in results)
        done = [r.to_dict() for r in results]
        fire = {**fire, "status": "ok" if ok else "failed", "results": done}
        why = f"retraining needed ({', '.join(reasons)}): delivery {fire['status']}"
        # a stop arriving now must not lose the outcome of a delivery that happened
        await asyncio.shield(self._record(model, version, now, fire, why))
        if not ok:
            logger.warning("retraining trigger for %s failed: %s", model, fire["results"])
        return fire

    async def _record(
        self, model: str, version: str, at: float, fire: dict[str, Any], why: str
    ) -> None:
        await self._write_status(model, at, fire, why)
        await self.registry.append_audit(
            "retraining_trigger", actor=ACTOR, model=model, version=version, after=fire, reason=why
        )

    async def _write_status(self, model: str, at: float, fire: dict[str, Any], why: str) -> None:
        value = {"last_fired_at": at, "last_fire": fire}
        await self.registry.put_state(status_key(model), value, actor=ACTOR, reason=why)

    async def evaluate_all(self) -> None:
        try:
            models = [m.name for m in await self.registry.list_models()]
        except Exception:
            log_failure(logger, "retraining monitor cannot list models")
            return
        for model in models:
            try:
                await self.evaluate(model)
            except Exception as exc:
                self.errors[model] = f"{type(exc).__name__}: {exc}"[:300]
                log_failure(logger, "retraining evaluation of %s failed", model)
            else:
                self.errors.pop(model, None)

    # --- background task ---------------------------------------------------------
    async def run(self) -> None:
        while True:
            if self.leader is None or self.leader.is_leader:
                await self.evaluate_all()
                await asyncio.sleep(self.config.evaluate_every_s)
            else:  # check again soon: this process may be elected
                await asyncio.sleep(min(self.config.evaluate_every_s, self.leader.retry_s))

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

"""The lifecycle's background work inside the running server: rollouts and retraining.

``gateway/app.py``'s lifespan calls ``start_lifecycle(state)`` once the first snapshot is
published and ``stop_lifecycle(state)`` first at shutdown (their routes are in
``gateway/routes.py``). Every worker process starts the same four things:

* a ``LeaderElection`` on ``<home>/controller.lock``: exactly one process of a home folder
  leads, another takes over within ``MODELGATE_LEADER_RETRY_S`` when it dies (with a
  PostgreSQL registry, ``DatabaseLeaderElection``: one process of every node leads);
* the ``RolloutController`` (acts only while leading), ticking every
  ``MODELGATE_ROLLOUT_TICK_S`` on a ``ServingStatsSource`` (``rollout.serving_source``);
* the ``RetrainingMonitor`` (evaluates only while leading), configured from the
  ``MODELGATE_RETRAIN_*`` variables (``gateway.settings.RetrainingSettings``) and fed by
  ``retraining.inputs.retraining_inputs``. It is also ``state.retraining``, which
  ``GET|PUT /admin/models/{name}/retraining`` reads in any worker;
* ``ExternalRollbacks`` (counts only while leading, on the rollout tick): rollbacks made by
  ``modelgate rollback``, which no worker answered, in ``modelgate_rollbacks_total``;
* the ``ExperimentController`` (acts only while leading): a look at every running A/B
  experiment every ``MODELGATE_EXPERIMENT_INTERVAL_S`` (``gateway.experiments.controller``).

A setting that cannot be parsed raises ``SettingsError`` from ``start_lifecycle``: the
server refuses to start rather than run without its controllers. Both calls are
idempotent, so a test can call them around a lifespan that already does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from gateway.coordination.db_leader import DatabaseLeaderElection
from gateway.coordination.leader import LEADER_LOCK, LeaderElection
from gateway.coordination.leadership import Leader
from gateway.experiments.controller import ExperimentController
from gateway.experiments.guardrails import GatewayGuardrails
from gateway.experiments.planner import OutcomeData
from gateway.experiments.store import CONTROLLER, Experiments
from gateway.monitoring.metrics.experiments import PrometheusExperimentMetrics
from gateway.retraining.inputs import InputsConfig, labels_source, retraining_inputs
from gateway.retraining.trigger import RetrainingMonitor, TriggerConfig
from gateway.rollout.api import metrics_of
from gateway.rollout.controller import RolloutController
from gateway.rollout.external_rollbacks import ExternalRollbacks
from gateway.rollout.metrics import PrometheusRolloutMetrics
from gateway.rollout.serving_source import ServingStatsSource
from gateway.rollout.store import Rollouts
from gateway.settings import (
    LifecycleSettings,
    RetrainingSettings,
    Settings,
    SettingsError,
    lifecycle_settings,
)
from registry.backend import is_postgres_url

if TYPE_CHECKING:
    from gateway.state import GatewayState

logger = logging.getLogger("modelgate.lifecycle")


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    tick_s: float = 1.0
    leader_retry_s: float = 1.0
    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    experiment_interval_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LifecycleConfig:
        return cls.of(settings.lifecycle, settings.retraining)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LifecycleConfig:
        """The lifecycle's ``MODELGATE_*`` variables of ``environ`` (read by gateway.settings)."""
        return cls.of(*lifecycle_settings(os.environ if environ is None else environ))

    @classmethod
    def of(cls, life: LifecycleSettings, retraining: RetrainingSettings) -> LifecycleConfig:
        try:
            trigger = TriggerConfig.from_settings(retraining)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        inputs = InputsConfig.from_settings(retraining)
        return cls(life.tick_s, life.leader_retry_s, trigger, inputs, life.experiment_interval_s)


@dataclass(eq=False)
class Lifecycle:
    """What ``start_lifecycle`` started (``state.lifecycle``)."""

    config: LifecycleConfig
    leader: Leader
    controller: RolloutController
    retraining: RetrainingMonitor
    stats: ServingStatsSource
    rollbacks: ExternalRollbacks
    experiments: ExperimentController | None = None


def _refresher(state: GatewayState) -> Callable[[], Awaitable[Any]]:
    async def refresh() -> None:
        if state.publisher is not None:
            await state.publisher.refresh()

    return refresh


async def start_lifecycle(state: GatewayState) -> None:
    """Start the leader campaign, the rollout controller and the retraining monitor."""
    if state.lifecycle is not None:
        return
    if state.registry is None:
        raise RuntimeError("start_lifecycle needs the registry open (after the first publish)")
    config = LifecycleConfig.from_settings(state.settings)
    home = state.settings.paths.root
    metrics = metrics_of(state)
    url = state.settings.registry_url
    leader: Leader = (
        DatabaseLeaderElection(url, retry_s=config.leader_retry_s)
        if is_postgres_url(url) and url is not None
        else LeaderElection(home / LEADER_LOCK, retry_s=config.leader_retry_s)
    )
    stats = ServingStatsSource(
        state.holder,
        metrics,
        labels=labels_source(state),
        resolution_s=config.tick_s / 2,
    )
    rollouts = Rollouts(state.registry, home, metrics=PrometheusRolloutMetrics(metrics))
    controller = RolloutController(
        rollouts, stats, leader=leader, tick_s=config.tick_s, on_change=_refresher(state)
    )
    monitor = RetrainingMonitor(
        state.registry,
        retraining_inputs(state, config.inputs),
        config.trigger,
        home=home,
        leader=leader,
    )
    rollbacks = ExternalRollbacks(
        state.registry, metrics.inc_rollback, leader=leader, tick_s=config.tick_s
    )
    experiments = ExperimentController(
        Experiments(
            state.registry,
            home,
            cast(OutcomeData, state.registry),
            actor=CONTROLLER,
            publisher=state.publisher,
            settings=state.settings,
        ),
        GatewayGuardrails(metrics, state.holder),
        leader=leader,
        interval_s=config.experiment_interval_s,
        metrics=PrometheusExperimentMetrics(metrics),
    )
    state.retraining = monitor
    state.lifecycle = Lifecycle(config, leader, controller, monitor, stats, rollbacks, experiments)
    leader.start()
    controller.start()
    monitor.start()
    rollbacks.start()
    experiments.start()
    logger.info(
        "lifecycle: rollout tick %gs, retraining every %gs (trigger %s)",
        config.tick_s,
        config.trigger.evaluate_every_s,
        "configured" if config.trigger.configured else "not configured",
    )


async def stop_lifecycle(state: GatewayState) -> None:
    """Stop the controllers, then give up the leadership (another worker takes over)."""
    lifecycle: Lifecycle | None = state.lifecycle
    if lifecycle is None:
        return
    state.lifecycle = None
    try:
        if lifecycle.experiments is not None:
            await lifecycle.experiments.stop()
        await lifecycle.rollbacks.stop()
        await lifecycle.controller.stop()
    finally:
        try:
            await lifecycle.retraining.stop()
        finally:
            await lifecycle.leader.stop()
            state.retraining = None

"""The leader's experiment controller: one look per running experiment every interval.

``ExperimentController`` runs in every worker but acts only in the leader (the same
``Leader`` as the rollout controller), every ``MODELGATE_EXPERIMENT_INTERVAL_S``.
For each model whose ``experiment/<model>`` is running it reads the outcome moments and the
assignment counts the registry keeps (every worker and node), and the gateway's guardrail
readings per variant, folds one look (``analysis.fold``: ``stats.verdict.evaluate`` per
metric), sets the gauges, and either stores the look in the record or, on a final verdict
(winner, no detectable difference, mixed, guardrail, sample-ratio mismatch), stops the
experiment through ``Experiments.stop``: the traffic goes back to the control, or to the
winner through the promotion gate when the experiment asked for it, and the verdict with
its numbers is stored and audited with actor ``experiment-controller``.

The folded test states live in the record, so a restarted server or a new leader carries
on from the last stored look; only the gateway guardrails restart their base (the
Prometheus counters of the workers, see ``guardrails``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from gateway.coordination.background import BackgroundTask, log_failure
from gateway.coordination.leadership import Leader
from gateway.errors import Conflict
from gateway.experiments.analysis import GatewayReading
from gateway.experiments.keys import RUNNING
from gateway.experiments.store import Experiments
from gateway.monitoring.metrics.experiments import PrometheusExperimentMetrics

logger = logging.getLogger("modelgate.experiments")


class GuardrailSource(Protocol):
    async def readings(
        self, experiment_id: str, model: str, versions: Sequence[str]
    ) -> dict[str, GatewayReading]: ...

    def forget(self, experiment_id: str) -> None: ...


class ExperimentController:
    """Looks at every running experiment; acts only while ``leader`` (if given) leads."""

    def __init__(
        self,
        experiments: Experiments,
        guardrails: GuardrailSource | None = None,
        *,
        leader: Leader | None = None,
        interval_s: float = 30.0,
        metrics: PrometheusExperimentMetrics | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.experiments = experiments
        self.registry = experiments.registry
        self.guardrails = guardrails
        self.leader = leader
        self.interval_s = interval_s
        self.metrics = metrics
        # model -> the id of its experiment that was running at the last tick
        self._watched: dict[str, str] = {}
        self._task = BackgroundTask(self.run)

    async def tick(self) -> None:
        """One look at every model; a failure on one model is logged, never raised."""
        try:
            models = [m.name for m in await self.registry.list_models()]
        except Exception:
            log_failure(logger, "experiment controller cannot list models")
            return
        for model in models:
            try:
                await self.tick_model(model)
            except Exception:
                log_failure(logger, "experiment controller failed on model %s", model)

    async def tick_model(self, model: str) -> bool:
        """One look at ``model``'s experiment; True when it stopped it."""
        record = await self.experiments.load(model)
        if record is None or record["status"] != RUNNING:
            self._forget(model)
            return False
        experiment_id = record["id"]
        if self._watched.get(model) not in (None, experiment_id):
            self._forget(model)  # another experiment ended between two ticks
        self._watched[model] = experiment_id
        readings: dict[str, GatewayReading] = {}
        if self.guardrails is not None:
            readings = await self.guardrails.readings(
                experiment_id, model, list(record["variants"])
            )
        look = await self.experiments.look(record, readings)
        if self.metrics is not None:
            self.metrics.look(model, experiment_id, look.look)
        if look.final is None:
            await self.experiments.save_look(record, look.states, look.look)
            return False
        logger.info("experiment %s of %s: %s", experiment_id, model, look.final["reason"])
        try:
            await self.experiments.stop(
                model, verdict=look.final, states=look.states, look=look.look
            )
        except Conflict as exc:  # an operator stopped it meanwhile: their verdict stands
            logger.info("experiment %s of %s not stopped: %s", experiment_id, model, exc)
            return False
        self._forget(model)
        return True

    def _forget(self, model: str) -> None:
        """The model's experiment ended: gauges to idle, its guardrail base dropped."""
        ended = self._watched.pop(model, None)
        if ended is None:
            return
        if self.metrics is not None:
            self.metrics.idle(model)
        if self.guardrails is not None:
            self.guardrails.forget(ended)

    async def run(self) -> None:
        while True:
            if self.leader is None or self.leader.is_leader:
                await self.tick()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

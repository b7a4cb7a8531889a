"""Requests each variant of a running experiment served, flushed to the registry by every
worker, and the upkeep that runs beside it (the running-experiment view, old keys).

Nothing is added to the request path: monitoring already counts, per loaded version, the
requests its sticky or weighted routing sent there (``VariantMetrics.assigned_requests``;
pinned, challenger and shadow requests are not assignments). Every ``FLUSH_S`` each worker
adds what those counters grew by since its previous flush to
``experiment_assignments`` (one transaction per experiment), so the registry holds the sum
over every worker and node. Without monitoring it falls back to the version's plain
request counters (every request, pinned ones included).

A worker that was already serving when an experiment started counts from the moment it
first sees the experiment (within one tick of the change); a worker started later counts
from zero. A crash loses at most the last ``FLUSH_S`` of that worker's counts (a clean
stop flushes); a failed flush keeps its deltas for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from gateway.dataplane.snapshot import SnapshotHolder, Variant
from gateway.experiments.outcomes import OutcomeStore, prune_keys
from gateway.experiments.record import RunningExperiment
from gateway.experiments.running import RunningExperiments
from gateway.monitoring.recorder import VariantRecorder
from registry.errors import RegistryError

if TYPE_CHECKING:
    from gateway.state import GatewayState

logger = logging.getLogger("modelgate.experiments")

FLUSH_S = 5.0
PRUNE_EVERY_S = 3600.0


class AssignmentStore(OutcomeStore, Protocol):
    async def add_assignments(self, experiment_id: str, counts: Mapping[str, int]) -> None: ...


def assigned(variant: Variant) -> tuple[object, int]:
    """(the counters' owner, requests routed to ``variant`` by its model's sticky or
    weighted routing so far). The owner changes when the counts restart from zero."""
    recorder = variant.recorder
    if isinstance(recorder, VariantRecorder):
        return recorder.vm, recorder.vm.assigned_requests()
    return variant, variant.requests + variant.errors


class AssignmentCounter:
    """This worker's counts not yet flushed, per experiment and variant."""

    def __init__(self, holder: SnapshotHolder, started_at: float) -> None:
        self._holder = holder
        self._started_at = started_at  # when this worker began counting
        # (experiment id, version) -> (the counter object, its value at the last flush)
        self._flushed: dict[tuple[str, str], tuple[int, int]] = {}

    def pending(self, experiment: RunningExperiment) -> dict[str, tuple[int, int]]:
        """version -> (counter object id, current value) of the experiment's variants."""
        route = self._holder.current.models.get(experiment.model)
        if route is None:
            return {}
        out = {}
        for version in experiment.variants:
            variant = route.variants.get(version)
            if variant is not None:
                owner, value = assigned(variant)
                out[version] = (id(owner), value)
        return out

    def deltas(self, experiment: RunningExperiment) -> dict[str, tuple[int, int, int]]:
        """version -> (delta, counter object id, current value) to flush."""
        out = {}
        fresh = experiment.started_at >= self._started_at  # began while this worker ran
        for version, (source, value) in self.pending(experiment).items():
            seen = self._flushed.get((experiment.id, version))
            if seen is None:
                before = value if fresh else 0
            else:
                before = seen[1] if seen[0] == source else 0  # a reload starts at zero
            out[version] = (max(0, value - before), source, value)
        return out

    def flushed(self, experiment_id: str, done: Mapping[str, tuple[int, int, int]]) -> None:
        for version, (_delta, source, value) in done.items():
            self._flushed[(experiment_id, version)] = (source, value)

    def forget_others(self, running: set[str]) -> None:
        for key in [k for k in self._flushed if k[0] not in running]:
            del self._flushed[key]


class ExperimentUpkeep:
    """One task per worker: refresh the running experiments, flush the assignment
    counts every ``flush_s``, prune expired outcome keys every ``prune_s``."""

    def __init__(
        self,
        registry: Callable[[], AssignmentStore | None],
        holder: SnapshotHolder,
        running: RunningExperiments,
        window_s: float,
        *,
        flush_s: float = FLUSH_S,
        prune_s: float = PRUNE_EVERY_S,
    ) -> None:
        self._registry = registry
        self.running = running
        self.counter = AssignmentCounter(holder, time.time())
        self.window_s = window_s
        self.flush_s = flush_s
        self.prune_s = prune_s
        self._last_prune = -float("inf")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="experiments")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.flush()  # a clean stop loses nothing

    async def flush(self) -> None:
        """Add this worker's new assignment counts to the registry."""
        store = self._registry()
        if store is None:
            return
        experiments = self.running.all()
        self.counter.forget_others({e.id for e in experiments.values()})
        for experiment in experiments.values():
            deltas = self.counter.deltas(experiment)
            counts = {version: d[0] for version, d in deltas.items() if d[0]}
            try:
                if counts:
                    await store.add_assignments(experiment.id, counts)
            except RegistryError as exc:
                logger.warning("assignment counts of %s kept for later: %s", experiment.id, exc)
                continue
            self.counter.flushed(experiment.id, deltas)

    async def tick(self) -> None:
        await self.running.refresh()
        await self.flush()
        store = self._registry()
        now = time.monotonic()
        if store is not None and now - self._last_prune >= self.prune_s:
            try:
                pruned = await prune_keys(store, self.window_s)
            except RegistryError as exc:
                logger.warning("pruning outcome keys failed: %s", exc)
            else:
                self._last_prune = now
                if pruned:
                    logger.info("forgot %d outcome keys older than the late window", pruned)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("experiment upkeep failed; retrying on the next tick")
            await asyncio.sleep(self.flush_s)


async def start_experiment_upkeep(state: GatewayState) -> None:
    """Service start hook (``gateway.app.SERVICES``)."""
    if state.running_experiments is None:
        return
    upkeep = ExperimentUpkeep(
        lambda: state.registry,
        state.holder,
        state.running_experiments,
        state.settings.outcome_window_s,
    )
    await upkeep.running.refresh()
    upkeep.start()
    state.experiment_upkeep = upkeep


async def stop_experiment_upkeep(state: GatewayState) -> None:
    upkeep, state.experiment_upkeep = state.experiment_upkeep, None
    if upkeep is not None:
        await upkeep.stop()

"""``GatewayState``: what the parts of one gateway process share, every field declared.

The composition root (``gateway/app.py``) builds it; the lifespan fills the fields that
exist only while serving (the registry, the publisher, the watcher, then the background
services). Nothing else assigns to it. Component types are imported for type checking
only, so this module stays below everything that uses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.admin.auth import AdminAuth
    from gateway.dataplane.feedback.outcomes import OutcomeSink
    from gateway.dataplane.feedback.store import FeedbackStore
    from gateway.dataplane.shadow import ShadowMirror
    from gateway.dataplane.snapshot import SnapshotHolder
    from gateway.experiments.assignments import ExperimentUpkeep
    from gateway.experiments.running import RunningExperiments
    from gateway.lifecycle import Lifecycle
    from gateway.monitoring.binder import Monitoring
    from gateway.retraining.trigger import RetrainingMonitor
    from gateway.serving.link import RegistryLink
    from gateway.serving.publisher import Publisher
    from gateway.serving.watcher import GenerationWatcher
    from gateway.settings import Settings
    from registry.sqlite.store import SqliteRegistry


@dataclass(eq=False)
class GatewayState:
    """Everything the app's parts share; ``app.state.gateway``."""

    settings: Settings
    holder: SnapshotHolder
    mirror: ShadowMirror
    auth: AdminAuth
    token_path: Path | None
    # None when MODELGATE_MONITORING=off
    monitoring: Monitoring | None = None
    # a network registry's reachability and what the snapshot came from (None: SQLite)
    registry_link: RegistryLink | None = None
    # set by the lifespan while serving
    registry: SqliteRegistry | None = None
    publisher: Publisher | None = None
    watcher: GenerationWatcher | None = None
    # set by start_lifecycle (gateway/lifecycle.py), cleared by stop_lifecycle
    lifecycle: Lifecycle | None = None
    retraining: RetrainingMonitor | None = None
    # experiment outcomes: the running-experiment view and where outcomes go (create_app),
    # the task that flushes assignment counts (start_experiment_upkeep)
    running_experiments: RunningExperiments | None = None
    outcome_sink: OutcomeSink | None = None
    experiment_upkeep: ExperimentUpkeep | None = None

    @property
    def feedback(self) -> FeedbackStore | None:
        """Label feedback (``live_accuracy``, ``labelled_count``); None without monitoring."""
        return None if self.monitoring is None else self.monitoring.feedback


# a background service's start or stop hook (``gateway.app.SERVICES``)
Hook = Callable[[GatewayState], Awaitable[None]]

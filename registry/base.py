"""The store interface: what every registry backend provides.

Callers (converters, gateway control plane, CLI) depend on this Protocol only, so a
second backend (Postgres, a remote registry) can be added without touching them.
Every mutating method is one transaction that also appends its audit row and bumps the
global generation counter that gateway workers poll.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from registry.models import (
    AuditEntry,
    Deployment,
    Model,
    ModelVersion,
    NewVersion,
    RegistryView,
    Stage,
)
from registry.outcomes import MomentsRow, OutcomeRow


class ArtifactWriter(Protocol):
    def put(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return ``(sha256, size)``. Idempotent for identical bytes."""
        ...


class ChangeFeed(Protocol):
    """Announcements of committed changes from other processes and nodes (a wake-up only:
    the listener then reads the generation and the view as usual)."""

    connected: bool

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait(self, timeout_s: float) -> bool:
        """Until a change is announced (True) or ``timeout_s`` passes (False)."""
        ...


class RegistryStore(Protocol):
    # where a new version's ONNX bytes go before ``register_version`` references them
    @property
    def artifacts(self) -> ArtifactWriter: ...

    async def close(self) -> None: ...

    def change_feed(self) -> ChangeFeed | None:
        """A listener for changes other processes commit, or None: poll ``generation``."""
        ...

    # --- models and versions -------------------------------------------------
    async def list_models(self) -> list[Model]: ...

    async def get_model(self, name: str) -> Model: ...

    async def register_version(
        self,
        model: str,
        new: NewVersion,
        *,
        version: str | None = None,
        bump: str | None = None,
        actor: str = "",
        reason: str = "",
    ) -> ModelVersion:
        """Create the model if needed and add a version.

        Exactly one of ``version`` (explicit semver) or ``bump`` ("major" | "minor" |
        "patch", relative to the highest existing version; 1.0.0 for a new model) is given.
        Raises InvalidVersion, VersionExists, ArtifactMissing.
        """
        ...

    async def list_versions(self, model: str) -> list[ModelVersion]:
        """All versions, ordered by semantic version ascending."""
        ...

    async def get_version(self, model: str, version: str) -> ModelVersion:
        """``version`` may also be an alias name."""
        ...

    async def set_stage(
        self,
        model: str,
        version: str,
        stage: Stage,
        *,
        actor: str = "",
        reason: str = "",
        expect_generation: int | None = None,
    ) -> ModelVersion:
        """Apply an allowed stage transition.

        Promoting to production archives the previous production version (it stays
        loadable) and resets the deployment routes to 100 % on the new version.
        ``expect_generation`` (here and in ``set_deployment``): refuse with StaleRead
        unless the registry is still at that generation.
        """
        ...

    def stage_change(
        self, model: str, version: str, stage: Stage, *, actor: str = "", reason: str = ""
    ) -> Any:
        """``set_stage`` prepared, not run: an opaque change to ``commit``."""
        ...

    async def previous_production(self, model: str) -> ModelVersion | None:
        """The archived version that most recently left production (the rollback target)."""
        ...

    async def serving_view(
        self, model: str | None = None, *, state_prefix: str | tuple[str, ...] | None = None
    ) -> RegistryView:
        """Every model (or one) with versions, deployment and rollback target, the
        generation, and state values under ``state_prefix``, from one consistent snapshot."""
        ...

    async def set_alias(self, model: str, alias: str, version: str, *, actor: str = "") -> None: ...

    async def delete_alias(self, model: str, alias: str, *, actor: str = "") -> None: ...

    async def save_evaluation(
        self, model: str, version: str, report: dict[str, Any], *, actor: str = ""
    ) -> None: ...

    # --- deployment state ------------------------------------------------------
    async def get_deployment(self, model: str) -> Deployment: ...

    async def set_deployment(
        self,
        deployment: Deployment,
        *,
        actor: str = "",
        action: str = "traffic",
        reason: str = "",
        stage_changes: dict[str, Stage] | None = None,
        expect_generation: int | None = None,
        states: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Replace a model's traffic state (validated) in one transaction.

        ``stage_changes`` applies stage transitions in the same transaction (used by
        rollback and blue-green switch, which move production and traffic together);
        ``states`` writes control-plane state values (as ``put_state``) in it too (an
        experiment and the traffic split it owns).
        """
        ...

    def deployment_change(
        self,
        deployment: Deployment,
        *,
        actor: str = "",
        action: str = "traffic",
        reason: str = "",
        stage_changes: dict[str, Stage] | None = None,
        states: Mapping[str, Any] | None = None,
    ) -> Any:
        """``set_deployment`` prepared, not run: an opaque change to ``commit``."""
        ...

    async def commit(self, change: Any, *, expect_generation: int | None = None) -> Any:
        """Run a prepared change as one transaction; its result."""
        ...

    async def commit_and_view(
        self,
        change: Any,
        *,
        expect_generation: int | None = None,
        state_prefix: str | tuple[str, ...] | None = None,
    ) -> tuple[Any, RegistryView]:
        """Run a prepared change, then read ``serving_view(state_prefix=...)`` as it
        committed, at once (a serving worker publishes that view without reading again)."""
        ...

    async def generation(self) -> int:
        """Counter bumped by every committed change; cheap to poll."""
        ...

    # --- audit -----------------------------------------------------------------
    async def append_audit(
        self,
        action: str,
        *,
        actor: str = "",
        model: str | None = None,
        version: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str = "",
    ) -> AuditEntry: ...

    async def audit(
        self,
        *,
        model: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        ...

    # --- key/value state for the control plane (rollout state machine, policies)
    async def get_state(self, key: str) -> Any | None: ...

    async def put_state(
        self, key: str, value: Any, *, actor: str = "", reason: str = ""
    ) -> None: ...

    # --- experiment outcomes (data, not changes: no audit row, no generation bump) ----
    async def add_outcomes(
        self, model: str, rows: Sequence[OutcomeRow], *, received_at: float | None = None
    ) -> tuple[int, int]:
        """Record outcomes in one transaction: (accepted, duplicates). Idempotent per
        (model, unit, metric): a key already recorded adds nothing."""
        ...

    async def record_outcomes(
        self, model: str, rows: Sequence[OutcomeRow], *, received_at: float | None = None
    ) -> tuple[list[OutcomeRow], int]:
        """``add_outcomes`` returning the accepted rows themselves and the duplicates."""
        ...

    async def outcome_moments(self, scope: str, model: str) -> dict[str, dict[str, MomentsRow]]:
        """metric -> version -> (count, sum, sum of squares) of one scope."""
        ...

    async def baseline_moments(
        self, model: str, version: str, metric: str, days: int, *, now: float | None = None
    ) -> MomentsRow:
        """(count, sum, sum of squares) of ``version``'s outcomes outside experiments over
        the last ``days`` UTC days."""
        ...

    async def add_assignments(self, experiment_id: str, counts: Mapping[str, int]) -> None:
        """Add requests served per variant (a worker's deltas) in one transaction."""
        ...

    async def assignments(self, experiment_id: str) -> dict[str, int]:
        """Requests served per variant, summed over every worker and node."""
        ...

    async def prune_outcome_keys(self, older_than: float) -> int:
        """Forget idempotency keys received before unix time ``older_than``; how many."""
        ...

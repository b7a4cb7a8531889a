"""SqliteRegistry methods for versions, stages, aliases, evaluations and traffic state.

Kept apart from ``store.py`` (connection, registration, audit, state) to keep
each module readable; ``SqliteRegistry`` is the only class using this mixin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from registry.deployment import validate_deployment
from registry.errors import InvalidDeployment, NotFound, RegistryError
from registry.models import Deployment, ModelVersion, Route, Stage
from registry.parsed_versions import ParsedVersions
from registry.rows import (
    PREVIOUS_PRODUCTION_SQL,
    check_alias,
    from_json,
    to_json,
    version_from_row,
)
from registry.sqlite import ops
from registry.stages import check_transition, parse_stage


def _label(model: str, version: str) -> str:
    return f"version {version} of {model!r}"


def _superseded(version: str, reason: str) -> str:
    return f"superseded by {version}" + (f": {reason}" if reason else "")


class VersionsMixin(ops.SqliteBase):
    _parsed: ParsedVersions  # the store's parsed version bodies, shared with serving views

    # --- reads -----------------------------------------------------------------
    async def list_versions(self, model: str) -> list[ModelVersion]:
        async with self._read() as txn:
            await ops.require_model(txn, model)
            rows = await txn.all(
                "SELECT * FROM versions WHERE model = ? ORDER BY major, minor, patch", (model,)
            )
            aliases = await ops.aliases_by_version(txn, model)
        return [version_from_row(row, aliases.get(row["version"], ())) for row in rows]

    async def get_version(self, model: str, version: str) -> ModelVersion:
        async with self._read() as txn:
            row = await ops.resolve(txn, model, version)
            aliases = await ops.aliases_by_version(txn, model)
        # the body parsed once per process (the retraining monitor reads every production
        # version each round, on the event loop)
        return self._parsed.from_row(row, aliases.get(row["version"], ()))

    async def previous_production(self, model: str) -> ModelVersion | None:
        async with self._read() as txn:
            await ops.require_model(txn, model)
            row = await txn.one(PREVIOUS_PRODUCTION_SQL, (model,))
            return None if row is None else await ops.version_of(txn, row)

    async def get_deployment(self, model: str) -> Deployment:
        async with self._read() as txn:
            return await ops.load_deployment(txn, model)

    # --- stages --------------------------------------------------------------------
    async def _promote(
        self, txn: ops.Txn, model: str, version: str, current: Stage, actor: str, reason: str
    ) -> str | None:
        """Make ``version`` production, archiving the previous one; return the previous."""
        previous = await ops.production_version(txn, model)
        if previous is not None and previous != version:
            await ops.change_stage(
                txn,
                model,
                previous,
                Stage.PRODUCTION,
                Stage.ARCHIVED,
                actor=actor,
                reason=_superseded(version, reason),
            )
        await ops.change_stage(
            txn, model, version, current, Stage.PRODUCTION, actor=actor, reason=reason
        )
        return previous

    async def set_stage(
        self,
        model: str,
        version: str,
        stage: Stage | str,
        *,
        actor: str = "",
        reason: str = "",
        expect_generation: int | None = None,
    ) -> ModelVersion:
        change = self.stage_change(model, version, stage, actor=actor, reason=reason)
        return await self.commit(change, expect_generation=expect_generation)

    def stage_change(
        self, model: str, version: str, stage: Stage | str, *, actor: str = "", reason: str = ""
    ) -> ops.Change[ModelVersion]:
        """``set_stage`` as a transaction body, for ``commit`` or ``commit_and_view``."""
        target = parse_stage(stage)

        async def change(txn: ops.Txn) -> ModelVersion:
            row = await ops.resolve(txn, model, version)
            name, current = row["version"], Stage(row["stage"])
            check_transition(current, target, label=_label(model, name))
            before = await ops.load_deployment(txn, model)
            if target == Stage.ARCHIVED or current == Stage.PRODUCTION:
                ops.check_can_leave(before, name, current, target)
            if target != Stage.PRODUCTION:
                await ops.change_stage(
                    txn, model, name, current, target, actor=actor, reason=reason
                )
            else:
                previous = await self._promote(txn, model, name, current, actor, reason)
                dropped = {name, previous}
                after = dataclasses.replace(
                    before,
                    routes=(Route(name, 100.0),),
                    shadows=tuple(s for s in before.shadows if s.version not in dropped),
                    challenger=None if before.challenger in dropped else before.challenger,
                    updated_at=txn.now,
                )
                validate_deployment(after, await ops.stages(txn, model))
                await ops.write_deployment(txn, after)
                await ops.append_audit(
                    txn,
                    "traffic",
                    actor=actor,
                    model=model,
                    version=name,
                    before=before.to_dict(),
                    after=after.to_dict(),
                    reason=f"{name} promoted to production",
                )
            return await ops.version_of(txn, await ops.resolve(txn, model, name))

        return change

    # --- traffic ---------------------------------------------------------------------
    async def set_deployment(
        self,
        deployment: Deployment,
        *,
        actor: str = "",
        action: str = "traffic",
        reason: str = "",
        stage_changes: Mapping[str, Stage | str] | None = None,
        expect_generation: int | None = None,
        states: Mapping[str, Any] | None = None,
    ) -> Deployment:
        change = self.deployment_change(
            deployment,
            actor=actor,
            action=action,
            reason=reason,
            stage_changes=stage_changes,
            states=states,
        )
        # one round trip: on a loaded gateway each statement's trip waits for the loop
        return await self.commit(change, expect_generation=expect_generation)

    def deployment_change(
        self,
        deployment: Deployment,
        *,
        actor: str = "",
        action: str = "traffic",
        reason: str = "",
        stage_changes: Mapping[str, Stage | str] | None = None,
        states: Mapping[str, Any] | None = None,
    ) -> ops.Change[Deployment]:
        """``set_deployment`` as a transaction body, for ``commit`` or ``commit_and_view``.

        ``states``: control-plane state values (``put_state``) written in the same
        transaction, so a controller's record and the traffic it owns never disagree."""
        if not isinstance(deployment, Deployment):
            raise InvalidDeployment("set_deployment needs a Deployment")
        writes = dict(states or {})
        for key, value in writes.items():  # refused before anything is written
            ops.encode_state(key, value)
        model = deployment.model
        changes = [(ref, parse_stage(stage)) for ref, stage in (stage_changes or {}).items()]
        if sum(1 for _, stage in changes if stage == Stage.PRODUCTION) > 1:
            raise InvalidDeployment("only one version can be promoted to production")
        # demotions first, so "archive the old production, promote the new" works in any order
        changes.sort(key=lambda item: item[1] == Stage.PRODUCTION)

        async def change(txn: ops.Txn) -> Deployment:
            before = await ops.load_deployment(txn, model)
            for ref, target in changes:
                row = await ops.resolve(txn, model, ref)
                name, current = row["version"], Stage(row["stage"])
                check_transition(current, target, label=_label(model, name))
                if target == Stage.PRODUCTION:
                    await self._promote(txn, model, name, current, actor, reason)
                else:
                    await ops.change_stage(
                        txn, model, name, current, target, actor=actor, reason=reason
                    )
            validate_deployment(deployment, await ops.stages(txn, model))
            after = dataclasses.replace(
                deployment,
                sticky_salt=deployment.sticky_salt or before.sticky_salt,
                updated_at=txn.now,
            )
            await ops.write_deployment(txn, after)
            await ops.append_audit(
                txn,
                action or "traffic",
                actor=actor,
                model=model,
                before=before.to_dict(),
                after=after.to_dict(),
                reason=reason,
            )
            for key, value in writes.items():
                await ops.write_state(txn, key, value, actor=actor, reason=reason)
            return after

        return change

    # --- aliases and evaluations -------------------------------------------------------
    async def set_alias(self, model: str, alias: str, version: str, *, actor: str = "") -> None:
        check_alias(alias)
        async with self._write() as txn:
            target = (await ops.resolve(txn, model, version))["version"]
            row = await txn.one(
                "SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)
            )
            if row is not None and row["version"] == target:
                return
            await txn.run(
                "INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?) "
                "ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version",
                (model, alias, target),
            )
            await ops.append_audit(
                txn,
                "alias",
                actor=actor,
                model=model,
                version=target,
                before=None if row is None else {"alias": alias, "version": row["version"]},
                after={"alias": alias, "version": target},
            )

    async def delete_alias(self, model: str, alias: str, *, actor: str = "") -> None:
        async with self._write() as txn:
            await ops.require_model(txn, model)
            row = await txn.one(
                "SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)
            )
            if row is None:
                raise NotFound(f"model {model!r} has no alias {alias!r}")
            await txn.run("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias))
            await ops.append_audit(
                txn,
                "alias_delete",
                actor=actor,
                model=model,
                version=row["version"],
                before={"alias": alias, "version": row["version"]},
            )

    async def save_evaluation(
        self, model: str, version: str, report: dict[str, Any], *, actor: str = ""
    ) -> None:
        if not isinstance(report, dict):
            raise RegistryError("an evaluation report must be a dict")
        encoded = to_json(report, "evaluation report")
        async with self._write() as txn:
            row = await ops.resolve(txn, model, version)
            await txn.run(
                "UPDATE versions SET evaluation_json = ? WHERE model = ? AND version = ?",
                (encoded, model, row["version"]),
            )
            await ops.append_audit(
                txn,
                "evaluate",
                actor=actor,
                model=model,
                version=row["version"],
                before=from_json(row["evaluation_json"]),
                after=report,
            )

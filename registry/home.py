"""Where a registry lives on disk: one folder holding the SQLite file and the artifacts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".modelgate"


@dataclass(frozen=True, slots=True)
class HomePaths:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "registry.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin-token"


def resolve_home(
    arg: str | os.PathLike[str] | None, environ: Mapping[str, str] = os.environ
) -> HomePaths:
    """``--home`` wins, then ``MODELGATE_HOME``, then ``./.modelgate``."""
    raw = arg if arg else environ.get("MODELGATE_HOME") or DEFAULT_HOME
    return HomePaths(Path(raw).expanduser().resolve())

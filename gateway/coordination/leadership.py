"""``Leader``: what the background controllers use of a leader election, whichever it is.

Two elections implement it: ``leader.LeaderElection`` (a ``flock`` between the workers of
one home folder, SQLite) and ``db_leader.DatabaseLeaderElection`` (a PostgreSQL advisory
lock across every node). ``gateway/lifecycle.py`` picks one from the registry URL and hands
it to the rollout, experiment and retraining controllers and the external-rollback counter.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Leader(Protocol):
    """One process leads the control plane; the controllers act only while ``is_leader``."""

    # seconds between two campaign attempts (the retraining monitor polls at most this long)
    retry_s: float
    # set while this process leads, cleared when it steps down
    elected: asyncio.Event

    @property
    def is_leader(self) -> bool: ...

    def start(self) -> None:
        """Campaign in the background until elected (idempotent); needs a running loop."""

    async def stop(self) -> None:
        """Stop campaigning and give the leadership up at once."""

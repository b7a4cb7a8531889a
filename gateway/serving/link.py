"""What a node on a network registry knows about its database, for readiness and the log.

``RegistryLink`` is updated by the lifespan (start with or without the database) and by
the generation watcher (every poll that reaches or misses the database); the readiness
endpoint adds ``body()`` to its JSON so a probe, and an operator, see whether the node
serves the registry's current state, the view it saved before the database went away, or
nothing yet.
"""

from __future__ import annotations

from typing import Any

# what the published snapshot was built from
FROM_REGISTRY = "registry"
FROM_SAVED_VIEW = "saved view"
FROM_NOTHING = "nothing"


class RegistryLink:
    def __init__(self) -> None:
        self.reachable = True
        self.serving = FROM_REGISTRY
        self.reason = ""

    def unreachable(self, reason: str) -> None:
        self.reachable = False
        self.reason = reason

    def connected(self) -> None:
        self.reachable = True
        self.reason = ""

    def body(self) -> dict[str, Any]:
        """The readiness body's registry fields."""
        body: dict[str, Any] = {
            "registry": "connected" if self.reachable else "unreachable",
            "serving": self.serving,
        }
        if self.reason:
            body["reason"] = self.reason
        return body

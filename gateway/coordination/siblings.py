"""Whether a sibling worker already serves, so a replacement loads before it accepts.

``modelgate serve --workers N`` shares one listening socket among N uvicorn worker
processes. A worker normally listens while its versions load, so that readiness answers
per model during start-up. When uvicorn replaces a worker that died, its siblings already
serve every model: a replacement that accepted connections at once would answer 503 for
each model it has not loaded yet. So the first worker to be fully started leaves a marker
in the run's shared directory, and a worker that finds the marker loads before it accepts;
until then the kernel hands every connection to the siblings.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "serving.ready"


class SiblingReadiness:
    """The marker in ``directory`` (the run's shared multiprocess directory); with no
    directory (one worker) nobody is a sibling."""

    __slots__ = ("marker",)

    def __init__(self, directory: str | Path | None) -> None:
        self.marker = None if directory is None else Path(directory) / MARKER

    def sibling_serves(self) -> bool:
        """Whether a worker of this run has already finished its start-up."""
        return self.marker is not None and self.marker.exists()

    def mark_serving(self) -> None:
        """This worker finished its start-up (every version loaded, services started)."""
        if self.marker is not None:
            self.marker.touch()

    def clear(self) -> None:
        """A new run (the supervisor, before it spawns any worker): nobody serves yet."""
        if self.marker is not None:
            self.marker.unlink(missing_ok=True)

"""A real ``modelgate serve`` in its own process group on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.polling import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatewayProcess:
    """``python -m gateway.cli.main serve --home HOME --port P *args``, output to ``log``.

    ``env`` overrides the inherited environment (a value of None removes the variable);
    PROMETHEUS_MULTIPROC_DIR is always dropped so the server makes its own.
    """

    def __init__(
        self,
        home: Path,
        log: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        token: str = "tok",
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.token = token
        environ = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        environ["MODELGATE_ADMIN_TOKEN"] = token
        for key, value in (env or {}).items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        command = [sys.executable, "-m", "gateway.cli.main", "serve", "--home", str(home)]
        command += ["--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            command,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self, timeout_s: float = 120.0) -> GatewayProcess:
        if not wait_until(self._ready, timeout_s, 0.1):
            raise AssertionError(f"server not ready:\n{self.log.read_text()}")
        return self

    def _ready(self) -> bool:
        """Ready on 8 fresh connections in a row: with several workers, each listening
        while it loads, one worker's 200 does not mean the others are ready."""
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited:\n{self.log.read_text()}")
        try:
            return all(
                httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200
                for _ in range(8)
            )
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """A crash: every process of the server at once, no shutdown code runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def fresh(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request on a new connection (so successive ones spread over the workers)."""
        return httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)


@contextmanager
def running_server(
    home: Path,
    log: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    token: str = "tok",
) -> Iterator[GatewayProcess]:
    """A ``GatewayProcess`` once it is ready, stopped when the block ends."""
    server = GatewayProcess(home, log, args, env, token=token)
    try:
        yield server.wait_ready()
    finally:
        server.stop()

"""Start a server as a subprocess on a free loopback port, wait for it, measure its CPU, stop it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """A benchmark server did not start, did not get ready, or answered wrongly."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is field 3, the state)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its live descendants (from /proc).

    Children are found from each process's parent pid, since /proc/<pid>/task/*/children
    needs a kernel option that is often off.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        fields = _stat_fields(current)
        if fields is None:
            continue
        # utime and stime are fields 14 and 15 of the stat line
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        stack.extend(children.get(current, ()))
    return total


def system_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (from /proc/stat), to spot other load."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def wait_for_quiet(max_wait_s: float, threshold: float, sample_s: float = 1.0) -> float:
    """Wait until the machine's busy cores stay under ``threshold`` for one sample.

    Returns the last sample (in cores). Gives up after ``max_wait_s``: the run goes on
    and its "other CPU" column shows the disturbance.
    """
    end = time.monotonic() + max_wait_s
    while True:
        before = system_busy_s()
        time.sleep(sample_s)
        busy = (system_busy_s() - before) / sample_s
        if busy < threshold or time.monotonic() >= end:
            return busy


class ServerProcess:
    """A server command run in its own process group so stopping it stops its workers too."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, port: int
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.port = port
        self._log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, ready_path: str, timeout_s: float = 90.0) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                    f"{self.log_tail()}"
                )
            status, _ = self.request("GET", ready_path, timeout_s=1.0)
            if status == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout_s: float = 10.0
    ) -> tuple[int, bytes]:
        """One HTTP request; status 0 when the connection fails."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout_s)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            return 0, b""
        finally:
            conn.close()

    def header_counts(
        self, path: str, body: bytes, header: str, count: int, timeout_s: float = 10.0
    ) -> dict[str, int]:
        """Send ``count`` POSTs on one keep-alive connection; tally a response header."""
        tally: dict[str, int] = {}
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout_s)
        try:
            for _ in range(count):
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                value = response.getheader(header) or "(none)"
                tally[value] = tally.get(value, 0) + 1
        finally:
            conn.close()
        return tally

    def cpu_s(self) -> float:
        return process_tree_cpu_s(self.proc.pid) if self.proc else 0.0

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=grace_s)
        # workers of a multi-process server may outlive the parent for a moment
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        self.stop()
        self._log.close()

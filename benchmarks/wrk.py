"""Run the `wrk` load generator and read back its numbers and its own CPU use.

wrk prints a JSON line from the Lua ``done()`` hook (see wrk_post.lua); its CPU time
comes from the kernel's rusage of the reaped child (``os.wait4``), so the report can say
how much of the 2 cores the load generator itself took.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LUA_SCRIPT = Path(__file__).with_name("wrk_post.lua")
JSON_MARKER = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed nothing we can read."""


def ensure_wrk() -> str:
    """Return wrk's path, installing the Debian package when running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise WrkError("wrk is not installed; install it with `apt-get install -y wrk` (as root)")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise WrkError(f"`{' '.join(cmd)}` failed: {' | '.join(tail)}")
    found = shutil.which("wrk")
    if not found:
        raise WrkError("apt-get installed wrk but it is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "unknown"


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    cpu_user_s: float
    cpu_system_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def non_2xx(self) -> int:
        # wrk counts responses with status > 399 as "status" errors; none of the
        # servers measured here ever answers 1xx or 3xx
        return self.errors["status"]

    @property
    def socket_errors(self) -> int:
        e = self.errors
        return e["connect"] + e["read"] + e["write"] + e["timeout"]


def run_wrk(
    wrk: str,
    url: str,
    bodies_file: Path,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    timeout_s: float = 5.0,
    script: Path = LUA_SCRIPT,
) -> WrkResult:
    """One closed-loop run of wrk; raises WrkError when it fails or prints no summary.
    ``script``: the Lua script, which reads ``bodies_file`` (default: wrk_post.lua;
    wrk_binary.lua for binary bodies)."""
    threads = max(1, min(threads, connections))
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        url,
        "--",
        str(bodies_file),
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        status, rusage = _wait_with_rusage(proc, deadline_s=duration_s + timeout_s + 30)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if status != 0:
        raise WrkError(f"wrk exited with {status}: {stderr.strip() or stdout.strip()}")
    summary = _parse_summary(stdout)
    return WrkResult(
        requests=int(summary["requests"]),
        duration_s=summary["duration_us"] / 1e6,
        errors={k: int(v) for k, v in summary["errors"].items()},
        latency_us={k: float(v) for k, v in summary["latency_us"].items()},
        cpu_user_s=rusage.ru_utime,
        cpu_system_s=rusage.ru_stime,
    )


def _wait_with_rusage(proc: subprocess.Popen[bytes], *, deadline_s: float) -> tuple[int, Any]:
    """Reap the child with wait4 to get its exact CPU time; kill it past the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            return code, rusage
        if time.monotonic() > end:
            proc.send_signal(signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise WrkError(f"wrk did not finish within {deadline_s:.0f} s and was killed")
        time.sleep(0.05)


def _parse_summary(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith(JSON_MARKER):
            return orjson.loads(line[len(JSON_MARKER) :])
    raise WrkError(f"wrk printed no {JSON_MARKER.strip()} line; output was: {stdout.strip()!r}")

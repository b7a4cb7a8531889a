"""Exactly one leader among real processes, takeover when it dies, and the cross-process mutex."""

from __future__ import annotations

import asyncio
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.coordination.leader import ControlPlaneBusy, FileMutex, LeaderElection

CAMPAIGN = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.coordination.leader import LeaderElection

    async def main():
        election = LeaderElection(sys.argv[1], retry_s=0.02)
        if not election.try_acquire():
            print("follower", flush=True)
        election.start()
        await election.elected.wait()
        print("leader", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)

HOLD_MUTEX = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.coordination.leader import FileMutex

    async def main():
        async with FileMutex(sys.argv[1]):
            print("locked", flush=True)
            sys.stdin.read()  # hold it until the parent closes our stdin

    asyncio.run(main())
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )


def first_line(process: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """The next line the process prints (a hung child fails the test instead of hanging it)."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the child process printed nothing"
    return process.stdout.readline().strip()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_one_leader_among_two_processes_and_takeover(tmp_path: Path) -> None:
    lock = str(tmp_path / "controller.lock")
    first = spawn(CAMPAIGN, lock)
    try:
        assert first_line(first) == "leader"
        second = spawn(CAMPAIGN, lock)
        try:
            assert first_line(second) == "follower"
            assert Path(lock).read_text().strip() == str(first.pid)
            first.send_signal(signal.SIGKILL)  # the kernel drops the dead leader's lock
            first.wait(timeout=30)
            assert first_line(second) == "leader"
            assert Path(lock).read_text().strip() == str(second.pid)
            # and this process cannot lead while the second one lives
            assert not LeaderElection(lock).try_acquire()
        finally:
            stop(second)
    finally:
        stop(first)


def test_release_hands_over_within_one_process(tmp_path: Path) -> None:
    lock = tmp_path / "controller.lock"
    a, b = LeaderElection(lock), LeaderElection(lock)
    assert a.try_acquire() and a.is_leader
    assert not b.try_acquire() and not b.is_leader
    a.release()
    assert b.try_acquire()
    b.release()


async def test_the_mutex_excludes_other_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "rollout.lock")
    holder = spawn(HOLD_MUTEX, path)
    try:
        assert first_line(holder) == "locked"
        with pytest.raises(ControlPlaneBusy, match="locked by another process"):
            async with FileMutex(path, timeout_s=0.1):
                pass
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        async with FileMutex(path, timeout_s=10):
            pass
    finally:
        stop(holder)


async def test_the_mutex_serialises_coroutines_of_one_process(tmp_path: Path) -> None:
    path = tmp_path / "rollout.lock"
    inside: list[int] = []
    overlaps: list[int] = []

    async def critical(n: int) -> None:
        async with FileMutex(path):
            if inside:
                overlaps.append(n)
            inside.append(n)
            await asyncio.sleep(0.005)
            inside.remove(n)

    await asyncio.gather(*(critical(n) for n in range(5)))
    assert overlaps == []


async def test_coroutines_of_one_process_take_the_mutex_in_arrival_order(tmp_path: Path) -> None:
    """Waiters of one loop queue instead of racing each other's 5 ms polls: each gets the
    mutex as soon as the one before lets go, in the order they asked, and a waiter that gives
    up leaves the queue intact."""
    path = tmp_path / "rollout.lock"
    order: list[int] = []
    release = asyncio.Event()

    async def change(n: int) -> None:
        async with FileMutex(path, poll_s=3600.0):  # a poll would never come back in time
            order.append(n)
            if n == 0:
                await release.wait()

    tasks = [asyncio.create_task(change(n)) for n in range(4)]
    await asyncio.sleep(0.01)
    assert order == [0]
    with pytest.raises(ControlPlaneBusy, match="locked by another change"):
        async with FileMutex(path, timeout_s=0.05):
            pass
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3]
    async with FileMutex(path, timeout_s=0.1):
        pass

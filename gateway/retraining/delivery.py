"""Delivering a retraining trigger: an HTTP webhook and/or a command, retried with backoff.

Standard library only (no HTTP client dependency at runtime): the webhook is a JSON POST
through ``urllib.request`` in a worker thread with a timeout; any 2xx answer is success.
The command runs without a shell (an argv list), gets the JSON payload on stdin and the
model, version and reasons in ``MODELGATE_RETRAIN_*`` variables; exit status 0 is success,
and it is killed after the timeout.

``deliver`` never raises for a delivery failure: it returns one ``Attempts`` record per
target (status ``ok`` or ``failed``, the number of attempts, the last error).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

Sleep = Callable[[float], Awaitable[None]]
ERROR_CHARS = 300


class DeliveryError(Exception):
    """One failed attempt; the message is one line for the status report."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): 1, 2, 4, ... capped."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class Attempts:
    target: str  # "webhook" or "command"
    status: str  # "ok" or "failed"
    attempts: int
    error: str | None
    finished_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DeliveryError(f"HTTP {exc.code} from the webhook") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"webhook unreachable: {reason}") from None


async def post_webhook(
    url: str, payload: Mapping[str, Any], timeout: float, token: str | None = None
) -> None:
    headers = {"content-type": "application/json", "user-agent": "modelgate-retraining"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    status = await asyncio.to_thread(_post, url, orjson.dumps(payload), headers, timeout)
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from the webhook")


async def run_command(argv: Sequence[str], payload: Mapping[str, Any], timeout: float) -> None:
    env = dict(os.environ)
    env["MODELGATE_RETRAIN_MODEL"] = str(payload.get("model", ""))
    env["MODELGATE_RETRAIN_VERSION"] = str(payload.get("version", ""))
    env["MODELGATE_RETRAIN_REASONS"] = ",".join(payload.get("reasons", []))
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise DeliveryError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        _, stderr = await asyncio.wait_for(process.communicate(orjson.dumps(payload)), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise DeliveryError(f"command timed out after {timeout:g} s") from None
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise DeliveryError(f"command exited with status {process.returncode}: {tail[0]}")


async def with_retries(
    target: str,
    attempt: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> Attempts:
    error: str | None = None
    for n in range(1, policy.max_attempts + 1):
        try:
            await attempt()
        except DeliveryError as exc:
            error = str(exc)[:ERROR_CHARS]
        except Exception as exc:  # a bug or an odd failure must not stop the trigger
            error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        else:
            return Attempts(target, "ok", n, None, clock())
        if n < policy.max_attempts:
            await sleep(policy.delay(n))
    return Attempts(target, "failed", policy.max_attempts, error, clock())


async def deliver(
    payload: Mapping[str, Any],
    *,
    webhook_url: str | None,
    webhook_token: str | None,
    command: Sequence[str],
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> list[Attempts]:
    """Send ``payload`` to every configured target, each with its own retries."""
    jobs = []
    if webhook_url:
        url = webhook_url

        async def webhook() -> None:
            await post_webhook(url, payload, policy.timeout_s, webhook_token)

        jobs.append(with_retries("webhook", webhook, policy, sleep, clock))
    if command:
        argv = list(command)

        async def cmd() -> None:
            await run_command(argv, payload, policy.timeout_s)

        jobs.append(with_retries("command", cmd, policy, sleep, clock))
    return list(await asyncio.gather(*jobs))

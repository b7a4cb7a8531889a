"""Event-loop CPU per inference request on the HTTP fast path, in process, without sockets.

A development aid for the batching-on case, where the loop is the bottleneck: it runs
``modelgate serve``'s protocol (``GatewayHttpProtocol``) and app on a home built by the
benchmark (``benchmarks/.work/homes/...``), feeds ``--conns`` fake connections one real
request each per round, lets the batcher answer them, and prints the main thread's CPU time
per request (median and minimum of ``--reps`` repetitions). No kernel, no load generator:
the figure moves only with the Python work per request, so two checkouts compare well with
alternating runs (``PYTHONPATH=<other checkout> python benchmarks/fastpath_cpu.py ...``).
It is not a result to quote on its own: the caches are warm here, and under wrk the same
work costs more.

    python benchmarks/fastpath_cpu.py --home benchmarks/.work/homes/mlp-single --model mlp
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from uvicorn.server import ServerState

from gateway.app import create_app
from gateway.dataplane.http.fastpath import GatewayHttpProtocol
from gateway.settings import Settings

BODIES = Path(__file__).parent / ".work" / "bodies.jsonl"


class _Transport:
    """Just enough of an asyncio transport; counts replies and wakes the waiting round."""

    def __init__(self, replies: _Replies) -> None:
        self.replies = replies
        self.closing = False

    def write(self, data: bytes) -> None:
        self.replies.got_one()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def get_extra_info(self, name: str, default: object = None) -> object:
        peers = {"sockname": ("127.0.0.1", 8811), "peername": ("127.0.0.1", 40000)}
        return peers.get(name, default)


class _Replies:
    def __init__(self) -> None:
        self.left = 0
        self.done: asyncio.Future[None] | None = None

    def expect(self, count: int) -> asyncio.Future[None]:
        self.left = count
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def got_one(self) -> None:
        self.left -= 1
        if self.left == 0 and self.done is not None:
            self.done.set_result(None)


def requests(model: str, path: Path) -> list[bytes]:
    bodies = [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]
    head = b"POST /v2/models/%s/infer HTTP/1.1\r\nHost: 127.0.0.1:8811\r\n" % model.encode()
    return [
        head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
        for b in bodies
    ]


def serving_app(home: str) -> tuple[Any, uvicorn.Config, ServerState]:
    """The app of ``home`` (lifespan not run) and what ``modelgate serve``'s protocol needs."""
    settings = Settings.from_environ(dict(os.environ), home=home)
    app = create_app(settings)
    config = uvicorn.Config(
        app, http=GatewayHttpProtocol, lifespan="off", access_log=False, log_config=None
    )
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Fri, 27 Nov 2026 00:00:00 GMT"), *config.encoded_headers]
    return app, config, state


class FakeConnections:
    """``conns`` real protocols on fake transports; a round feeds each one request and
    waits for every reply. Round ``k`` starts at body ``k * advance`` of ``wire``."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: ServerState,
        wire: list[bytes],
        conns: int,
        advance: int = 1,
    ) -> None:
        self.wire = wire
        self.advance = advance
        self.replies = _Replies()
        self.protocols: list[GatewayHttpProtocol] = []
        for _ in range(conns):
            protocol = GatewayHttpProtocol(config=config, server_state=state, app_state={})
            protocol.connection_made(_Transport(self.replies))  # type: ignore[arg-type]
            self.protocols.append(protocol)

    async def one_round(self, k: int) -> None:
        done = self.replies.expect(len(self.protocols))
        first = k * self.advance
        for i, protocol in enumerate(self.protocols):
            protocol.data_received(self.wire[(first + i) % len(self.wire)])
        await done

    async def warm_up(self, rounds: int = 50) -> None:
        for k in range(rounds):
            await self.one_round(k)

    async def cpu_per_request(self, rounds: int, reps: int) -> list[float]:
        """µs of this thread's CPU per request, one sample per repetition of ``rounds``."""
        samples = []
        for _ in range(reps):
            start = time.thread_time_ns()
            for k in range(rounds):
                await self.one_round(k)
            samples.append((time.thread_time_ns() - start) / (rounds * len(self.protocols)) / 1e3)
        return samples

    def close(self) -> None:
        for protocol in self.protocols:
            protocol.connection_lost(None)


async def measure(home: str, model: str, conns: int, rounds: int, reps: int) -> list[float]:
    app, config, state = serving_app(home)
    async with app.router.lifespan_context(app):
        connections = FakeConnections(config, state, requests(model, BODIES), conns)
        await connections.warm_up()
        per_request = await connections.cpu_per_request(rounds, reps)
        connections.close()
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a modelgate home (registry)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--conns", type=int, default=32, help="fake connections per round")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("MODELGATE_ADMIN_TOKEN", "fastpath-cpu")
    uvloop.install()
    samples = asyncio.run(measure(args.home, args.model, args.conns, args.rounds, args.reps))
    print(
        f"loop CPU per request: median {statistics.median(samples):.1f} µs, "
        f"min {min(samples):.1f} µs over {len(samples)} repetitions "
        f"of {args.rounds} rounds x {args.conns} connections"
    )


if __name__ == "__main__":
    main()

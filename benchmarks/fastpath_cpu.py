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


async def measure(home: str, model: str, conns: int, rounds: int, reps: int) -> list[float]:
    settings = Settings.from_environ(dict(os.environ), home=home)
    app = create_app(settings)
    config = uvicorn.Config(
        app, http=GatewayHttpProtocol, lifespan="off", access_log=False, log_config=None
    )
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Fri, 27 Nov 2026 00:00:00 GMT"), *config.encoded_headers]
    wire = requests(model, BODIES)
    replies = _Replies()
    async with app.router.lifespan_context(app):
        protocols = []
        for _ in range(conns):
            protocol = GatewayHttpProtocol(config=config, server_state=state, app_state={})
            protocol.connection_made(_Transport(replies))  # type: ignore[arg-type]
            protocols.append(protocol)

        async def one_round(k: int) -> None:
            done = replies.expect(len(protocols))
            for i, protocol in enumerate(protocols):
                protocol.data_received(wire[(k + i) % len(wire)])
            await done

        for k in range(50):  # warm-up
            await one_round(k)
        per_request = []
        for _ in range(reps):
            start = time.thread_time()
            for k in range(rounds):
                await one_round(k)
            per_request.append((time.thread_time() - start) / (rounds * conns) * 1e6)
        for protocol in protocols:
            protocol.connection_lost(None)
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

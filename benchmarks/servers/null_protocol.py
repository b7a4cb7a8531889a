"""The floor under any Python HTTP server here: asyncio protocol + httptools + uvloop,
reading the body and answering a constant (see ``null_asgi`` for the comparison)::

    python -m benchmarks.servers.null_protocol 8813
    wrk -t1 -c64 -d6s -s benchmarks/wrk_post.lua http://127.0.0.1:8813/x \\
        -- benchmarks/.work/bodies.jsonl
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n"
RESPONSE += b'{"outputs":[1,2,3]}'


class NullProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.transport.write(RESPONSE)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(NullProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8813))

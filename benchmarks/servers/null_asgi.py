"""uvicorn's own per-request cost: an ASGI app that reads the body and answers a constant.

Compare with ``null_protocol`` (same parser, no ASGI) on the same machine, alternating::

    python -m uvicorn benchmarks.servers.null_asgi:app --port 8814 --loop uvloop \\
        --http httptools --no-access-log --log-level warning
    wrk -t1 -c64 -d6s -s benchmarks/wrk_post.lua http://127.0.0.1:8814/x \\
        -- benchmarks/.work/bodies.jsonl

This is why ``gateway/dataplane/http/fastpath.py`` answers inference requests without ASGI.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"outputs":[1,2,3]}'
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"19")],
}
DONE = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(START)
    await send(DONE)

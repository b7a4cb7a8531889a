"""``GET /openapi.json`` and ``GET /docs``: bodies encoded once, served as raw ASGI.

``/docs`` is a self-contained HTML page rendered on the server from the document (no
script, no stylesheet or font from elsewhere): it works offline and behind firewalls.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from gateway.dataplane.http.asgi import Receive, Scope, Send, respond
from gateway.openapi.document import build_document

METHODS = ("get", "put", "post", "delete")
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;"
    "text-align:left;vertical-align:top}code{font-size:95%}.m{font-weight:bold}"
)


class StaticEndpoint:
    """A fixed body with a fixed content type."""

    __slots__ = ("body", "content_type")

    def __init__(self, body: bytes, content_type: bytes) -> None:
        self.body = body
        self.content_type = content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, self.body, [(b"content-type", self.content_type)])


def _params(op: dict[str, Any]) -> str:
    parts = [f"<code>{html.escape(p['name'])}</code> ({p['in']})" for p in op.get("parameters", [])]
    if "requestBody" in op:
        types = ", ".join(op["requestBody"]["content"])
        parts.append(f"body: {html.escape(types)}")
    return "<br>".join(parts)


def render_docs(document: dict[str, Any]) -> str:
    info = document["info"]
    rows = []
    for path, item in document["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            auth = "bearer" if op.get("security") else ""
            rows.append(
                "<tr>"
                f"<td class=m>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(op['tags'][0])}</td>"
                f"<td>{auth}</td><td>{_params(op)}</td>"
                f"<td>{', '.join(op['responses'])}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{html.escape(info['title'])} API</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(info['title'])} {html.escape(info['version'])}</h1>"
        f"<p>{html.escape(info['description'])}</p>"
        '<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI '
        f"{html.escape(document['openapi'])}).</p>"
        "<table><tr><th>method</th><th>path</th><th>summary</th><th>tag</th><th>auth</th>"
        "<th>parameters</th><th>responses</th></tr>" + "".join(rows) + "</table></body></html>"
    )


def documentation_endpoints() -> tuple[StaticEndpoint, StaticEndpoint]:
    """(``/openapi.json``, ``/docs``) endpoints, built from one document."""
    document = build_document()
    spec = StaticEndpoint(orjson.dumps(document), b"application/json")
    page = StaticEndpoint(render_docs(document).encode(), b"text/html; charset=utf-8")
    return spec, page

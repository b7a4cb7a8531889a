"""``GET /console``, ``/console/models/{name}`` and ``/console/static/{file}``.

The pages are server-rendered shells: the layout, the headings, the token form and the
action forms, and no data. The data needs the admin token, which lives only in the
browser's ``sessionStorage``, so ``console.js`` fetches ``/console/api/...`` with the bearer
header and swaps in the fragments the server rendered there. Every page and file carries
a Content-Security-Policy that allows only the gateway's own scripts and styles (no inline
script or style at all). The static files ship in the package and are read once.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.http import error_for, registry_of
from gateway.admin.responses import error_response
from gateway.console.render import esc
from gateway.errors import GatewayError
from registry.errors import RegistryError

if TYPE_CHECKING:
    from gateway.settings import Settings
    from gateway.state import GatewayState

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
REFRESH_MS = 5000  # live refresh period of both pages

HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title>"
    '<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">'
    '<link rel="stylesheet" href="/console/static/console.css">'
    '<script src="/console/static/console.js" defer></script></head>'
)

TOKEN_FORM = """
<form id="token-form" class="panel" hidden>
  <h2>Admin token</h2>
  <p id="token-why">Enter the admin token (<code>MODELGATE_ADMIN_TOKEN</code>, or the file
  <code>&lt;home&gt;/admin-token</code>). It is kept in this tab's session storage only and
  sent as a bearer header.</p>
  <label for="token-input">Token</label>
  <input id="token-input" type="password" autocomplete="off" spellcheck="false" required>
  <button type="submit">Use token</button>
  <p id="token-error" class="error" role="alert"></p>
</form>"""

HEADER = """
<header class="top">
  <a class="brand" href="/console">modelgate console</a>
  <span id="refreshed" class="muted" role="status" aria-live="polite"></span>
  <button id="forget-token" type="button" hidden>Forget token</button>
</header>
<noscript><p class="error">The console needs JavaScript to fetch its data with the admin
token. The admin API and <code>modelgate</code> CLI work without it.</p></noscript>"""


def _page(settings: Settings, title: str, kind: str, model: str, main: str) -> bytes:
    public = "on" if settings.console_public else "off"
    body = (
        f'<body data-page="{kind}" data-model="{esc(model)}" data-public="{public}" '
        f'data-refresh-ms="{REFRESH_MS}">{HEADER}<main>{TOKEN_FORM}'
        f'<p id="load-error" class="error" role="alert"></p>{main}</main></body></html>'
    )
    return (HEAD.format(title=esc(title)) + body).encode()


OVERVIEW = """
<h1>Models</h1>
<section aria-labelledby="models-h"><h2 id="models-h" class="sr-only">Every model</h2>
<div id="models" class="region" aria-busy="true"><p class="muted">Loading…</p></div></section>"""

SECTIONS = (
    ("traffic", "Traffic"),
    ("health", "Health"),
    ("versions", "Versions"),
    ("rollout", "Rollout"),
    ("experiment", "A/B experiment"),
    ("drift", "Feature drift (PSI)"),
    ("confidence", "Confidence against the reference"),
    ("shadow", "Shadow agreement"),
    ("audit", "Recent audit rows"),
)


def _field(ident: str, label: str, kind: str = "text", extra: str = "") -> str:
    return (
        f'<label for="{ident}">{label}</label>'
        f'<input id="{ident}" type="{kind}" autocomplete="off" {extra}>'
    )


def _select(ident: str, label: str, options: tuple[str, ...]) -> str:
    choices = "".join(f'<option value="{o}">{o}</option>' for o in options)
    return f'<label for="{ident}">{label}</label><select id="{ident}">{choices}</select>'


def _checkbox(ident: str, label: str) -> str:
    return (
        f'<label class="check" for="{ident}"><input id="{ident}" type="checkbox"> {label}</label>'
    )


def _action(action: str, title: str, fields: str, button: str, danger: bool = False) -> str:
    cls = ' class="danger"' if danger else ""
    return (
        f'<form class="action" data-action="{action}"><fieldset><legend>{title}</legend>'
        f"{fields}"
        + _field(f"{action}-reason", "Reason (audit log)", extra="required maxlength=500")
        + f'<button type="submit"{cls}>{button}</button></fieldset></form>'
    )


ACTIONS = (
    '<section aria-labelledby="actions-h" class="actions"><h2 id="actions-h">Actions</h2>'
    '<p id="action-result" class="result" role="status" aria-live="assertive"></p>'
    '<datalist id="version-list"></datalist>'
    + _action("rollback", "Roll back production", "", "Roll back", danger=True)
    + _action(
        "promote",
        "Promote to production",
        _field("promote-version", "Version", extra='list="version-list" required'),
        "Promote",
    )
    + _action(
        "traffic",
        "Set traffic weights",
        _field(
            "traffic-weights",
            "Weights in percent (version=weight, …; sum 100)",
            extra='required placeholder="1.0.0=90, 1.1.0=10"',
        ),
        "Set weights",
    )
    + _action(
        "shadow-add",
        "Add or change a shadow",
        _field("shadow-add-version", "Version", extra='list="version-list" required')
        + _field(
            "shadow-add-sample",
            "Sample (percent of routed requests)",
            "number",
            'min="0" max="100" step="any" value="100" required',
        ),
        "Add shadow",
    )
    + _action(
        "shadow-remove",
        "Remove a shadow",
        _field("shadow-remove-version", "Version", extra='list="version-list" required'),
        "Remove shadow",
    )
    + _action(
        "rollout-start",
        "Start a rollout",
        _field("rollout-start-candidate", "Candidate", extra='list="version-list" required')
        + _field("rollout-start-steps", "Steps (percent)", extra='value="5, 25, 50, 100" required')
        + _field(
            "rollout-start-interval",
            "Seconds per step",
            "number",
            'min="1" step="any" value="60" required',
        ),
        "Start rollout",
    )
    + _action("rollout-cancel", "Cancel the rollout", "", "Cancel rollout", danger=True)
    + _action(
        "experiment-start",
        "Start an experiment",
        _field(
            "experiment-start-variants",
            "Variants in percent (control=weight, candidate=weight; sum 100)",
            extra='required placeholder="1.0.0=50, 1.1.0=50"',
        )
        + _field(
            "experiment-start-metrics",
            "Metrics (name:kind, …; kind binary, continuous or guardrail)",
            extra='value="conversion:binary" required',
        )
        + _field(
            "experiment-start-baselines",
            "Baselines if production has under 100 outcomes (name=rate; continuous name=mean/sd)",
            extra='placeholder="conversion=0.1, revenue=40/25"',
        )
        + _field(
            "experiment-start-mde",
            "Minimum detectable effect",
            "number",
            'step="any" value="0.05" required',
        )
        + _select("experiment-start-mde-kind", "Effect is", ("relative", "absolute"))
        + _field(
            "experiment-start-alpha", "Alpha", "number", 'min="0" max="1" step="any" value="0.05"'
        )
        + _field(
            "experiment-start-power", "Power", "number", 'min="0" max="1" step="any" value="0.8"'
        )
        + _checkbox("experiment-start-promote", "Promote the winner through the gate at the end"),
        "Start experiment",
    )
    + _action("experiment-stop", "Stop the experiment", "", "Stop experiment", danger=True)
    + "</section>"
)


def _model_main(name: str) -> str:
    regions = "".join(
        f'<section aria-labelledby="{ident}-h"><h2 id="{ident}-h">{title}</h2>'
        f'<div id="{ident}" class="region" aria-busy="true"><p class="muted">Loading…</p></div>'
        "</section>"
        for ident, title in SECTIONS
    )
    return (
        f'<nav class="crumbs"><a href="/console">All models</a></nav><h1>{esc(name)}</h1>'
        f'<div class="layout"><div class="data">{regions}</div>{ACTIONS}</div>'
    )


class ConsolePages:
    """The console's HTML pages and static files."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.settings = settings = state.settings
        self.overview_body = _page(settings, "modelgate console", "overview", "", OVERVIEW)
        folder = resources.files("gateway.console") / "static"
        self.static: dict[str, tuple[bytes, str]] = {}
        for entry in folder.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if suffix in STATIC_TYPES:
                self.static[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])

    @staticmethod
    def _html(body: bytes) -> Response:
        headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
        return Response(body, 200, headers, media_type="text/html; charset=utf-8")

    async def overview(self, request: Request) -> Response:
        return self._html(self.overview_body)

    async def model(self, request: Request) -> Response:
        # the shell only; an unknown name is a 404, as on the open /v2/models/{name}
        name = request.path_params["name"]
        try:
            await registry_of(self.state).get_model(name)
        except (GatewayError, RegistryError) as exc:
            return error_for(request, exc)
        return self._html(
            _page(self.settings, f"{name} · modelgate", "model", name, _model_main(name))
        )

    async def asset(self, request: Request) -> Response:
        found = self.static.get(request.path_params["file"])
        if found is None:
            return error_response("no such console file", request, 404)
        body, content_type = found
        headers = {**SECURITY_HEADERS, "cache-control": "no-cache"}
        return Response(body, 200, headers, media_type=content_type)

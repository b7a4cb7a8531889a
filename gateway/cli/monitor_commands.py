"""Monitoring verbs against a running server: ``drift`` and ``health``.

    modelgate drift N  [--url http://127.0.0.1:8000] [--json] [--home DIR]
    modelgate health N [--url ...] [--json] [--home DIR]

They read ``GET /admin/models/{name}/drift`` / ``/health`` (the live windows exist only
in the server). The admin token is ``MODELGATE_ADMIN_TOKEN``, else ``<home>/admin-token``
(the file ``serve`` writes); ``--url`` defaults to ``MODELGATE_URL``, else
``http://127.0.0.1:8000``. Any failure (server unreachable, 401, unknown model) is one
line on stderr and exit status 2. The request uses the standard library (``urllib``): the
CLI needs no HTTP client package beyond the core dependencies.
"""

from __future__ import annotations

import argparse
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from gateway.cli.common import common_options, home_of
from gateway.cli.output import CLIError, format_table, print_json

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0


def admin_token(args: argparse.Namespace) -> str:
    token = os.environ.get("MODELGATE_ADMIN_TOKEN", "").strip()
    if not token:
        path = home_of(args).admin_token
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError:
            token = ""
        if not token:
            raise CLIError(
                f"no admin token: set MODELGATE_ADMIN_TOKEN or start the server once ({path})"
            )
    if not (token.isascii() and token.isprintable()):
        raise CLIError("the admin token holds characters an HTTP header cannot carry")
    return token


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other non-200 (the token is not sent on)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def _get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """(status, body) of ``GET url``; OSError / HTTPException when there is no answer."""
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # an answer with a status other than 2xx
        with exc:
            return exc.code, exc.read()


def _reason(exc: Exception) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return " ".join(str(reason).split()) or type(reason).__name__


def fetch(args: argparse.Namespace, what: str) -> dict[str, Any]:
    """``GET /admin/models/{name}/{what}`` of the server at ``--url``."""
    base = (args.url or os.environ.get("MODELGATE_URL") or DEFAULT_URL).rstrip("/")
    url = f"{base}/admin/models/{urllib.parse.quote(args.name, safe='')}/{what}"
    headers = {"authorization": f"Bearer {admin_token(args)}"}
    if urllib.parse.urlsplit(base).scheme.lower() not in ("http", "https"):
        raise CLIError(f"cannot reach the server at {base}: not an http:// or https:// URL")
    try:
        status, content = _get(url, headers)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise CLIError(f"cannot reach the server at {base}: {_reason(exc)}") from None
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if status != 200:
        message = body.get("error") if isinstance(body, dict) else None
        text = " ".join(content.decode("utf-8", "replace")[:200].split())
        raise CLIError(f"{url}: HTTP {status}: {message or text}")
    if not isinstance(body, dict):
        raise CLIError(f"{url}: the answer is not a JSON object")
    return body


def _span(window: dict[str, Any]) -> str:
    return f"{window['size']}/{window['capacity']} rows over {window['time_span_s']:.1f} s"


def _role(entry: dict[str, Any]) -> str:
    parts = [f"weight {entry['weight']:g}%"]
    parts += [name for name in ("primary", "challenger", "shadow") if entry.get(name)]
    return ", ".join(parts)


def _verdict(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def render_drift(report: dict[str, Any]) -> str:
    lines = []
    if not report["versions"]:
        lines.append(f"{report['model']}: no version loaded with a drift window")
    for entry in report["versions"]:
        share = entry.get("share_drifted")
        share_text = "n/a" if share is None else f"{share:.0%}"
        lines.append(
            f"{report['model']} {entry['version']} ({_role(entry)}): {_span(entry['window'])}, "
            f"drifted {_verdict(entry['drifted'])}, share of drifted features {share_text}"
        )
        rows = [
            (
                f["name"],
                f["kind"],
                f["n"],
                f["psi"],
                f["test"],
                f["statistic"],
                f["pvalue"],
                _verdict(f["drifted"]) if f["drifted"] is not None else f["reason"],
            )
            for f in entry["features"]
        ]
        if rows:
            headers = ["feature", "kind", "n", "psi", "test", "statistic", "p-value", "drifted"]
            lines.append(format_table(rows, headers))
        prediction = entry.get("prediction")
        if prediction is not None:
            psi = prediction["psi"]
            lines.append(
                f"prediction drift ({prediction['kind']}): psi "
                f"{'n/a' if psi is None else f'{psi:.4f}'}, "
                f"drifted {_verdict(prediction['drifted'])}"
            )
        lines.append(_multivariate_line(entry.get("multivariate")))
        lines.append("")
    return "\n".join(lines).rstrip()


def _multivariate_line(result: dict[str, Any] | None) -> str:
    if result is None:
        return "multivariate drift: not available (no reconstruction model stored)"
    error = result["error"]
    if result["drifted"] is None:
        detail = result["reason"] if error is None else f"error {error:.4f}, {result['reason']}"
        return f"multivariate drift: n/a ({detail})"
    return (
        f"multivariate drift (PCA, {result['components']} components): reconstruction error "
        f"{error:.4f}, bounds [{result['lower']:.4f}, {result['upper']:.4f}], "
        f"drifted {_verdict(result['drifted'])}"
    )


def render_health(report: dict[str, Any]) -> str:
    rows = []
    issues = []
    for v in report["versions"]:
        feedback = v.get("feedback") or {}
        rows.append(
            (
                v["version"],
                "yes" if v["healthy"] else "NO",
                v["total_predictions"],
                v["avg_confidence"],
                v["low_confidence_rate"],
                v["p50_latency_ms"],
                v["p95_latency_ms"],
                v["p99_latency_ms"],
                v["error_rate"],
                v["feature_drift_score"],
                feedback.get("accuracy", feedback.get("mae")),
                feedback.get("labelled", 0),
            )
        )
        issues += [f"{v['version']}: {issue}" for issue in v["issues"]]
    headers = [
        "version",
        "healthy",
        "predictions",
        "avg conf",
        "low conf",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "drift",
        "live acc/mae",
        "labels",
    ]
    overall = report["healthy"]
    state = "no version loaded" if overall is None else ("healthy" if overall else "UNHEALTHY")
    lines = [f"{report['model']}: {state}"]
    if rows:
        lines.append(format_table(rows, headers))
    lines += issues
    return "\n".join(lines)


def cmd_drift(args: argparse.Namespace) -> int:
    report = fetch(args, "drift")
    if args.json:
        print_json(report)
    else:
        print(render_drift(report))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    report = fetch(args, "health")
    if args.json:
        print_json(report)
    else:
        print(render_health(report))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``drift`` and ``health`` to the ``modelgate`` parser."""
    for verb, handler, text in (
        ("drift", cmd_drift, "feature and prediction drift of a model's live traffic"),
        ("health", cmd_health, "health verdict of a model's loaded versions"),
    ):
        p = subparsers.add_parser(
            verb, help=text, description=f"{text[0].upper()}{text[1:]}, from a running server."
        )
        p.add_argument("name", metavar="N", help="model name")
        p.add_argument("--url", help=f"server URL (default: $MODELGATE_URL or {DEFAULT_URL})")
        common_options(p)
        p.set_defaults(handler=handler)

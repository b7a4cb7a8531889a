"""``modelgate serve``: run the gateway on uvicorn (uvloop, httptools, no access log).

With ``--workers N`` (N > 1) the workers share their metrics and label-feedback tables
through files: before spawning them, ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
clean directory (the operator's, emptied of old metric files, or a fresh temporary one
removed again at exit) and the feedback tables go to its ``feedback`` folder; the workers
get one ``PYTHONHASHSEED`` so that they key those tables alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson

from gateway.admin.auth import resolve_admin_token
from gateway.cli.common import actor, common_options
from gateway.cli.extras import CONVERT, needs_extra
from gateway.cli.output import CLIError
from gateway.coordination.siblings import SiblingReadiness
from gateway.dataplane.http.fastpath import http_protocol
from gateway.monitoring.metrics.multiproc import ENV_VAR as MULTIPROC_ENV
from gateway.monitoring.metrics.multiproc import prepare_multiprocess_dir
from gateway.settings import Settings, SettingsError
from registry.backend import is_postgres_url, open_store, redact
from registry.errors import RegistryUnavailable

APP_FACTORY = "gateway.app:create_app_from_env"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP gateway",
        description="Serve every registered model (Open Inference Protocol V2 + /predict).",
    )
    common_options(parser, json_flag=False)
    parser.add_argument("--host", help="bind address (default: $MODELGATE_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $MODELGATE_PORT or 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: 1)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="register the demo model 'churn' first when the registry is empty",
    )
    parser.set_defaults(handler=run_serve)


def settings_from_args(args: argparse.Namespace) -> Settings:
    try:
        return Settings.from_environ(
            os.environ,
            home=args.home,
            registry_url=args.registry,
            host=args.host,
            port=args.port,
            workers=args.workers,
        )
    except SettingsError as exc:
        raise CLIError(str(exc)) from None


def example_instance(schema: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """One plausible named row for the curl example (reference medians and categories)."""
    numerical = reference.get("numerical") or {}
    categorical = reference.get("categorical") or {}
    row: dict[str, Any] = {}
    for feature in schema.get("features") or []:
        name = feature.get("name")
        if feature.get("kind") == "categorical" or feature.get("dtype") == "string":
            categories = (categorical.get(name) or {}).get("categories") or [""]
            row[name] = categories[0]
        else:
            edges = (numerical.get(name) or {}).get("edges") or [0.0]
            row[name] = round(float(edges[len(edges) // 2]), 4)
    return row


async def _prepare(settings: Settings, demo: bool) -> tuple[str, dict[str, Any]] | None:
    """Register the demo when asked and the registry is empty; pick a curl example. A
    network registry that does not answer is not fatal (without --demo): the server starts
    from its saved view, or not ready, and retries the database."""
    try:
        registry = await open_store(settings.paths, settings.registry_url)
    except RegistryUnavailable as exc:
        if demo or not is_postgres_url(settings.registry_url):
            raise
        print(f"{exc}: starting from the saved serving view, retrying the database", flush=True)
        return None
    try:
        models = await registry.list_models()
        if demo and not models:
            with needs_extra(CONVERT, "modelgate serve --demo"):
                from converters.demo import register_demo  # lazy: serving never needs sklearn

            print("registering the demo model (training takes a few seconds)...", flush=True)
            await register_demo(registry, actor=actor())
            models = await registry.list_models()
        for model in models:
            if model.production_version is None:
                continue
            version = await registry.get_version(model.name, model.production_version)
            return model.name, example_instance(version.schema, version.reference)
        return None
    finally:
        await registry.close()


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_from_args(args)
    settings.home.mkdir(parents=True, exist_ok=True)
    example = asyncio.run(_prepare(settings, args.demo))
    _token, token_path = resolve_admin_token(settings)

    base = f"http://{settings.host}:{settings.port}"
    where = settings.home if settings.registry_url is None else redact(settings.registry_url)
    print(f"modelgate serving on {base} (registry {where})")
    if token_path is not None:
        print(f"admin token: {token_path}")
    else:
        print("admin token: from MODELGATE_ADMIN_TOKEN")
    if example is not None:
        name, row = example
        body = orjson.dumps({"instances": [row]}).decode()
        print("try:")
        print(
            f"  curl -s -X POST {base}/predict/{name} -H 'content-type: application/json' "
            f"-d {shlex.quote(body)}"
        )
    else:
        print("no model in production yet: register one with `modelgate convert`")

    from gateway.app import create_app, setup_logging

    setup_logging()
    common = uvicorn_options(settings)
    if settings.workers > 1:
        # each worker process builds its app from the environment
        os.environ.update(settings.to_environ())
        created = shared_directory()
        try:
            uvicorn.run(APP_FACTORY, factory=True, workers=settings.workers, **common)
        finally:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
    else:
        app = create_app(settings, freeze_gc=True, listen_while_loading=True)
        uvicorn.run(app, **common)
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for ``modelgate serve`` (every worker alike)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # httptools with the inference fast path and one write per response, unless
        # MODELGATE_FASTPATH=off or the installed uvicorn differs: then uvicorn's own
        "http": http_protocol(settings.fastpath),
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        "log_level": "info",
    }


def shared_directory() -> Path | None:
    """Set up ``PROMETHEUS_MULTIPROC_DIR`` for the workers (before any is spawned).

    An operator's directory is emptied of old metric and feedback files; without one a
    fresh temporary directory is created, and returned so that it is removed at exit.
    """
    given = os.environ.get(MULTIPROC_ENV)
    created = None
    if given:
        try:
            directory = prepare_multiprocess_dir(given)
        except (OSError, ValueError) as exc:
            raise CLIError(f"{MULTIPROC_ENV}={given}: {exc}") from None
        shutil.rmtree(directory / "feedback", ignore_errors=True)
        SiblingReadiness(directory).clear()
    else:
        created = Path(tempfile.mkdtemp(prefix="modelgate-"))
        directory = prepare_multiprocess_dir(created / "metrics")
    os.environ[MULTIPROC_ENV] = str(directory)
    # one string-hash seed for every worker (still random per run): the shared feedback
    # tables are keyed by the request id's hash() (gateway.dataplane.feedback.store)
    os.environ.setdefault("PYTHONHASHSEED", str(secrets.randbelow(2**32 - 1) + 1))
    return created

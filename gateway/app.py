"""Composition root: the only module that knows every part of the gateway.

``create_app(settings)`` wires the snapshot holder, shadow mirror, monitoring, route table
and admin auth; its lifespan opens the registry, attaches monitoring to the publisher (so
every version is bound before it takes traffic), publishes the first snapshot (every
needed version loaded and warmed up), starts the generation watcher, the shadow workers
and then each ``SERVICES`` start hook, and stops everything in reverse order.
A serving process (``listen_while_loading``) runs that first publish in the background:
it listens at once, each model answers ready as soon as its versions are warm, and
``/v2/health/ready`` answers 200 once every served model is. ``create_app_from_env()`` is
the factory uvicorn imports in each worker process (settings
travel through ``MODELGATE_*`` variables).

On a PostgreSQL registry the node saves every view it publishes in its home folder
(``serving/saved_view``). If the database is unreachable at start, the node serves that
saved view from its verified artifact cache (or, without one, starts not ready); the
readiness body and the log say which, and the watcher converges once the database answers.

Adding a background service: append its ``(start, stop)`` pair of
``async def hook(state: GatewayState) -> None`` to ``SERVICES``; a start hook runs after the
first publish, the stop hooks of the services that started run in reverse order first at
shutdown, each in its own try (a failing stop is logged, the others still run).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.auth import AdminAuth, resolve_admin_token
from gateway.admin.responses import error_response
from gateway.admin.statuses import status_for
from gateway.coordination.siblings import SiblingReadiness
from gateway.dataplane.http.asgi import Receive, Scope, Send
from gateway.dataplane.shadow import ShadowMirror
from gateway.dataplane.snapshot import SnapshotHolder
from gateway.errors import GatewayError
from gateway.experiments.assignments import start_experiment_upkeep, stop_experiment_upkeep
from gateway.experiments.outcomes import RegistryOutcomeSink
from gateway.experiments.running import RunningExperiments
from gateway.lifecycle import start_lifecycle, stop_lifecycle
from gateway.monitoring.binder import Monitoring, shared_feedback_dir
from gateway.monitoring.metrics.multiproc import multiprocess_dir
from gateway.monitoring.metrics.prometheus import MetricsRegistry
from gateway.monitoring.timers import start_monitoring, stop_monitoring
from gateway.routes import HotPaths, build_routes
from gateway.serving.link import FROM_NOTHING, FROM_SAVED_VIEW, RegistryLink
from gateway.serving.loader import Loader, load_variant
from gateway.serving.publisher import VIEW_STATE_PREFIXES, Publisher
from gateway.serving.saved_view import CachedArtifacts, SavedView
from gateway.serving.watcher import GenerationWatcher
from gateway.settings import Settings
from gateway.state import GatewayState, Hook
from registry.backend import is_postgres_url, open_store, redact
from registry.errors import RegistryError, RegistryUnavailable
from registry.models import RegistryView
from registry.sqlite.store import SqliteRegistry

logger = logging.getLogger("modelgate.app")


# background services started after the first publish, stopped in reverse order
SERVICES: list[tuple[Hook, Hook]] = [
    (start_monitoring, stop_monitoring),
    (start_lifecycle, stop_lifecycle),
    (start_experiment_upkeep, stop_experiment_upkeep),
]


class GatewayApp(Starlette):
    """Starlette with the inference routes dispatched before the middleware stack.

    The inference endpoints answer every error themselves (JSON, never a traceback), so
    they need neither the exception middleware nor the router; everything else is plain
    Starlette.
    """

    hot: HotPaths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            matched = self.hot.match(scope["path"])
            if matched is not None:
                scope["app"] = self
                scope["path_params"] = matched[1]
                await matched[0](scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _open_registry(settings: Settings, link: RegistryLink | None) -> SqliteRegistry:
    """The registry; a network registry that does not answer is opened without waiting
    (its pool keeps connecting) and ``link`` records why."""
    try:
        return await open_store(settings.paths, settings.registry_url)
    except RegistryUnavailable as exc:
        if link is None or settings.registry_url is None:
            raise
        link.unreachable(str(exc))
        return await open_store(settings.paths, settings.registry_url, connect=False)


async def _publish_saved(
    publisher: Publisher, saved: SavedView, registry: SqliteRegistry, link: RegistryLink
) -> None:
    """First publish with the database unreachable: the saved view, or nothing (not ready)."""
    view: RegistryView | None = await asyncio.to_thread(saved.load)
    if view is None:
        link.serving = FROM_NOTHING
        logger.warning(
            "%s and no saved serving view in %s: not ready until the database answers",
            link.reason,
            saved.path,
        )
        return
    snapshot = await publisher.refresh(view, source=CachedArtifacts(view, registry.artifacts))
    link.serving = FROM_SAVED_VIEW
    logger.warning(
        "%s: serving the saved view of generation %d (%s) from the verified local artifact "
        "cache%s; retrying the database in the background",
        link.reason,
        view.generation,
        ", ".join(sorted(snapshot.models)) or "no models",
        "" if snapshot.ready else " (not ready: some versions are missing from the cache)",
    )


def _log_start_failure(task: asyncio.Task[None]) -> None:
    """A background start-up that failed leaves the server not ready; say why."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("start-up failed: not ready", exc_info=task.exception())


async def _gateway_error(request: Request, exc: Exception) -> Response:
    status = status_for(exc)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    # gateway errors speak to the client (a 503 says what is not ready); a 500 says nothing
    message = str(exc) if status != 500 else "internal server error"
    return error_response(message, request, status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    headers = getattr(exc, "headers", None)
    return error_response(str(getattr(exc, "detail", "")), request, status, dict(headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware logs and re-raises after this response is sent
    return error_response("internal server error", request, 500)


def create_app(
    settings: Settings,
    *,
    freeze_gc: bool = False,
    metrics: MetricsRegistry | None = None,
    listen_while_loading: bool = False,
    load: Loader = load_variant,
    on_started: Callable[[], None] | None = None,
) -> Starlette:
    """The gateway app; ``freeze_gc`` (serving processes) moves everything alive after the
    first load out of the collector's reach, so full collections stop rescanning models
    and libraries. ``metrics`` defaults to the process's registry (``get_metrics()``).

    ``listen_while_loading`` (``modelgate serve``): the lifespan returns once the registry
    is open and its view read, and the first publish runs in the background, so the server
    listens while versions load and answers readiness per model as each is ready (then
    the watcher and the ``SERVICES`` start). Without it (in-process use, tests) the
    lifespan returns when everything is loaded and started. ``load`` turns a version into
    a ``Variant`` (``serving.loader.load_variant``; tests wrap it to hold one load).
    ``on_started`` runs once the start-up is complete (the snapshot counts as loaded)."""
    token, token_path = resolve_admin_token(settings)
    state = GatewayState(
        settings=settings,
        holder=SnapshotHolder(),
        mirror=ShadowMirror(settings.shadow_queue, cpu_share=settings.shadow_cpu_share),
        auth=AdminAuth(token),
        token_path=token_path,
        registry_link=RegistryLink() if is_postgres_url(settings.registry_url) else None,
    )
    if settings.monitoring:
        state.monitoring = Monitoring(
            settings,
            state.holder,
            state.mirror,
            metrics=metrics,
            feedback_dir=shared_feedback_dir(),
        )
    state.running_experiments = RunningExperiments(
        lambda: None if state.publisher is None else state.publisher.view
    )
    state.outcome_sink = RegistryOutcomeSink(
        lambda: state.registry,
        None if state.monitoring is None else state.monitoring.metrics.families,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        link = state.registry_link
        registry = await _open_registry(settings, link)
        state.registry = registry
        saved = None
        if link is not None:
            saved = SavedView(settings.paths.root, redact(settings.registry_url or ""))
        publisher = Publisher(registry, settings, state.holder, state.mirror, saved, load=load)
        state.publisher = publisher
        if state.monitoring is not None:
            state.monitoring.attach(publisher)
        watcher = GenerationWatcher(
            publisher, settings.poll_interval_ms / 1000.0, registry.change_feed(), link=link
        )
        started: list[Hook] = []

        async def start_serving(view: RegistryView | None) -> None:
            """First publish, then the watcher and the background services."""
            if view is None and link is not None and saved is not None:
                await _publish_saved(publisher, saved, registry, link)
            else:
                began = time.perf_counter()
                # server readiness waits for the services below (as when nothing listened
                # before start-up was complete)
                snapshot = await publisher.refresh(view, loaded=False)
                logger.info(
                    "serving %d model(s) after %.1f s: %s",
                    len(snapshot.models),
                    time.perf_counter() - began,
                    ", ".join(sorted(snapshot.models)) or "-",
                )
            state.mirror.start()
            watcher.start()
            state.watcher = watcher
            for start, stop in SERVICES:
                await start(state)
                started.append(stop)
            if freeze_gc:
                gc.collect()
                gc.freeze()
            await publisher.mark_loaded()
            if on_started is not None:
                on_started()

        starting: asyncio.Task[None] | None = None
        try:
            view = None
            if link is None or saved is None or link.reachable:
                # read here, so a registry that cannot be read fails the start-up
                view = await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
            if listen_while_loading:
                starting = asyncio.get_running_loop().create_task(start_serving(view))
                starting.add_done_callback(_log_start_failure)
            else:
                await start_serving(view)
            yield
        finally:
            if starting is not None and not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            for stop in reversed(started):
                try:
                    await stop(state)
                except Exception:
                    logger.exception("stopping %s failed", getattr(stop, "__name__", stop))
            await watcher.stop()
            await state.mirror.stop()
            await publisher.close()
            await registry.close()

    routes = build_routes(state)
    app = GatewayApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            RegistryError: _gateway_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.hot = HotPaths(routes)
    app.state.gateway = state
    return app


def setup_logging() -> None:
    """Send the gateway's own log lines (loads, swaps, failures) to stderr like uvicorn's."""
    gateway_logger = logging.getLogger("modelgate")
    if not gateway_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(message)s"))
        gateway_logger.addHandler(handler)
        gateway_logger.setLevel(logging.INFO)


def create_app_from_env() -> Starlette:
    """uvicorn factory (``--workers``): settings from MODELGATE_* variables. A worker
    started after a sibling finished its start-up (uvicorn replacing one that died) loads
    before it accepts, so the siblings answer meanwhile instead of it answering 503."""
    setup_logging()
    siblings = SiblingReadiness(multiprocess_dir())
    return create_app(
        Settings.from_environ(),
        freeze_gc=True,
        listen_while_loading=not siblings.sibling_serves(),
        on_started=siblings.mark_serving,
    )

"""Prometheus metrics of the gateway (docs/contracts.md, "Metrics"), served at ``GET /metrics``.

Integration (what the serving core calls, and where)::

    from gateway.monitoring.metrics.prometheus import ROUTE_WEIGHTED, get_metrics, metrics_endpoint

    # serve command, parent process, only with --workers N > 1, before spawning workers:
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prepare_multiprocess_dir(tmp_dir))

    metrics = get_metrics()            # the process's MetricsRegistry, created on first call
    metrics.start(interval_s=1.0)      # lifespan start: periodic flush (+ dead-worker sweep)
    await metrics.stop()               # lifespan end: final flush
    Route("/metrics", metrics_endpoint, methods=["GET"])   # raw ASGI; flushes, then renders

    # control plane, when a version is loaded (publisher.on_load) / retired (on_unload).
    # Binding is per loaded version, so every snapshot that references it shares the slots:
    vm = metrics.bind_variant(model, version, classes=signature.classes)   # loaded = 1
    metrics.unbind_variant(model, version)
    metrics.set_traffic_weight(model, version, 95.0)   # after each publish; percent
    metrics.inc_rollback(model, "manual")

    # request path, on the event loop, through the vm held by the variant's recorder:
    vm.record_request(ROUTE_WEIGHTED, 200, elapsed_ns)     # every answered request
    vm.record_batch(n_rows, inference_ns)                  # every ORT call
    vm.record_predictions(n_rows, class_index, confidence) # index into classes; top prob
    vm.record_input_error(exc.reason)                      # 4xx for a routed request
    vm.record_shadow_dropped()                             # mirror queue full
    metrics.record_input_error(model, reason)              # 4xx before a version was chosen

    # off-path timers (drift, shadow, feedback jobs); each returns False when the version
    # is not bound (a late timer never resurrects a retired version's series):
    metrics.set_feature_psi(model, version, feature, psi)    metrics.set_prediction_psi(...)
    metrics.set_shadow_agreement(...)   metrics.set_live_accuracy(...)   set_loaded(...)

Durations are integer nanoseconds (``perf_counter_ns`` differences), exposed in seconds.

Labels: ``route`` is the rule that chose the version (``ROUTES``: url, header, challenger,
sticky, weighted, shadow); ``code`` the HTTP status. Only requests that reached a known
version are counted; ``model`` must never be a name a client made up (cardinality).
``requests_total{route,code="200"}`` of the client routes, ``predictions_total`` of every
schema class, the histograms, ``low_confidence_total`` and ``model_loaded`` exist (at 0)
from binding on; rarer codes, PSI, agreement and accuracy appear once recorded.

Cost: recording bumps plain Python ints in preallocated lists (``metrics.slots``); ``flush``
moves the deltas into prometheus_client about once a second and before every scrape.
``benchmarks/metrics_bench.py`` measured the alternatives.

Removal: ``unbind_variant`` (when the last binding goes) flushes and removes every series of
that (model, version), so retired versions do not linger. In multiprocess mode series
cannot be removed from the workers' mmap files (prometheus_client has no removal there):
counters and histograms keep their final values until the next start with a clean
directory, ``model_loaded`` and ``traffic_weight`` are set to 0 and the other gauges to NaN;
those gauges leave when the worker process does.

One registry per process: ``get_metrics()``. ``MetricsRegistry(multiprocess_dir=None)`` is
for tests and tools that want their own ``CollectorRegistry`` in a single process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.monitoring.metrics.families import (
    CLIENT_ROUTES,
    ROUTE_CHALLENGER,
    ROUTE_HEADER,
    ROUTE_SHADOW,
    ROUTE_STICKY,
    ROUTE_URL,
    ROUTE_WEIGHTED,
    ROUTES,
    MetricFamilies,
)
from gateway.monitoring.metrics.multiproc import (
    check_value_class,
    mark_process_dead,
    multiprocess_dir,
    prepare_multiprocess_dir,
    sweep_dead_processes,
)
from gateway.monitoring.metrics.slots import KeyedCounts
from gateway.monitoring.metrics.variant import DEFAULT_LOW_CONFIDENCE, VariantMetrics

__all__ = [
    "CONTENT_TYPE_LATEST",
    "CLIENT_ROUTES",
    "ROUTES",
    "ROUTE_CHALLENGER",
    "ROUTE_HEADER",
    "ROUTE_SHADOW",
    "ROUTE_STICKY",
    "ROUTE_URL",
    "ROUTE_WEIGHTED",
    "MetricsEndpoint",
    "MetricsRegistry",
    "VariantMetrics",
    "get_metrics",
    "mark_process_dead",
    "metrics_endpoint",
    "prepare_multiprocess_dir",
    "sweep_dead_processes",
]

logger = logging.getLogger("modelgate.metrics")

_process_lock = threading.RLock()  # get_metrics() holds it while the registry claims
SWEEP_EVERY = 30  # flusher ticks between sweeps of dead workers' gauge files
_FROM_ENV: Any = object()


class MetricsRegistry:
    """Every metric family of one process, the bound variants and the exposition."""

    def __init__(
        self,
        multiprocess_dir: str | os.PathLike[str] | None = _FROM_ENV,
        *,
        low_confidence_threshold: float = DEFAULT_LOW_CONFIDENCE,
    ) -> None:
        path = _multiprocess_dir_from(multiprocess_dir)
        check_value_class(path)
        if path is not None:
            _claim_multiprocess()
        self.multiprocess_dir = path
        self.low_confidence_threshold = low_confidence_threshold
        # the families live here; in multiprocess mode the exposition reads the files
        self.registry = CollectorRegistry(auto_describe=True)
        self.families = MetricFamilies(self.registry)
        if path is None:
            self.exposition: Any = WithoutCreated(self.registry)
        else:
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition, path=path)
        self._variants: dict[tuple[str, str], VariantMetrics] = {}
        self._input_errors = KeyedCounts(lambda key: self._input_error_child(*key))
        self._input_error_children: dict[tuple[str, str], Counter] = {}
        self._flush_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def multiprocess(self) -> bool:
        return self.multiprocess_dir is not None

    # ---- variants -----------------------------------------------------------------------

    def bind_variant(
        self,
        model: str,
        version: str,
        classes: Sequence[Any] = (),
        *,
        prebind_routes: Sequence[int] = CLIENT_ROUTES,
    ) -> VariantMetrics:
        """Bind (or share, counting references) the slots of a loaded version; loaded=1."""
        key = (model, version)
        vm = self._variants.get(key)
        if vm is not None:
            vm.refs += 1
        else:
            vm = VariantMetrics(
                self.families,
                model,
                version,
                classes,
                input_error_child=lambda reason: self._input_error_child(model, reason),
                prebind_routes=prebind_routes,
                low_confidence_threshold=self.low_confidence_threshold,
            )
            self._variants[key] = vm
        vm.set_loaded(True)
        return vm

    def unbind_variant(self, model: str, version: str) -> bool:
        """Release one binding; the last one removes the version's series. False if unbound."""
        key = (model, version)
        vm = self._variants.get(key)
        if vm is None:
            return False
        vm.refs -= 1
        if vm.refs <= 0:
            with self._flush_lock:
                del self._variants[key]
                vm.retire(self.multiprocess)
        return True

    def variant(self, model: str, version: str) -> VariantMetrics | None:
        return self._variants.get((model, version))

    def variants(self) -> list[VariantMetrics]:
        return list(self._variants.values())

    # ---- off-path setters (timers, control plane) ---------------------------------------

    def set_loaded(self, model: str, version: str, loaded: bool) -> bool:
        return self._apply(model, version, "set_loaded", loaded)

    def set_traffic_weight(self, model: str, version: str, weight: float) -> bool:
        return self._apply(model, version, "set_traffic_weight", weight)

    def set_prediction_psi(self, model: str, version: str, value: float) -> bool:
        return self._apply(model, version, "set_prediction_psi", value)

    def set_shadow_agreement(self, model: str, version: str, ratio: float) -> bool:
        return self._apply(model, version, "set_shadow_agreement", ratio)

    def set_live_accuracy(self, model: str, version: str, accuracy: float) -> bool:
        return self._apply(model, version, "set_live_accuracy", accuracy)

    def set_multivariate_error(
        self, model: str, version: str, error: float, lower: float, upper: float
    ) -> bool:
        """The window's mean reconstruction error with the bounds of its verdict."""
        return self._apply(model, version, "set_multivariate_error", error, lower, upper)

    def set_estimated_accuracy(self, model: str, version: str, accuracy: float) -> bool:
        return self._apply(model, version, "set_estimated_accuracy", accuracy)

    def set_estimated_roc_auc(self, model: str, version: str, auc: float) -> bool:
        return self._apply(model, version, "set_estimated_roc_auc", auc)

    def inc_shadow_dropped(self, model: str, version: str, n: int = 1) -> bool:
        return self._apply(model, version, "record_shadow_dropped", n)

    def set_feature_psi(self, model: str, version: str, feature: str, value: float) -> bool:
        vm = self._variants.get((model, version))
        if vm is None:
            return False
        vm.set_feature_psi(feature, value)
        return True

    def _apply(self, model: str, version: str, method: str, *values: Any) -> bool:
        # an unbound version is ignored: a timer that outlived an unload must not
        # resurrect the series that unbinding removed
        vm = self._variants.get((model, version))
        if vm is None:
            return False
        getattr(vm, method)(*values)
        return True

    def inc_rollback(self, model: str, reason: str, n: int = 1) -> None:
        self.families.rollbacks.labels(model, reason).inc(n)

    def record_input_error(self, model: str, reason: str) -> None:
        """A bad request for a known model before a version was chosen (accumulated)."""
        self._input_errors.add((model, reason))

    def _input_error_child(self, model: str, reason: str) -> Counter:
        key = (model, reason)
        child = self._input_error_children.get(key)
        if child is None:
            child = self._input_error_children[key] = self.families.input_errors.labels(*key)
        return child

    # ---- flushing and exposition --------------------------------------------------------

    def flush(self) -> None:
        """Move everything recorded since the last flush into prometheus_client."""
        with self._flush_lock:
            for vm in list(self._variants.values()):
                vm.flush()
            self._input_errors.flush()

    def render(self) -> bytes:
        """Flush, then the exposition text (every worker's, in multiprocess mode)."""
        self.flush()
        return generate_latest(self.exposition)

    def start(self, interval_s: float = 1.0) -> None:
        """Start the periodic flush on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_forever(interval_s))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self.flush()

    async def _flush_forever(self, interval_s: float) -> None:
        tick = 0
        while True:
            if self.multiprocess_dir is not None and tick % SWEEP_EVERY == 0:
                try:
                    sweep_dead_processes(self.multiprocess_dir)
                except OSError as exc:
                    logger.warning("cannot sweep the metrics directory: %s", exc)
            tick += 1
            try:
                self.flush()
            except Exception:
                logger.exception("metrics flush failed")
            await asyncio.sleep(interval_s)


class WithoutCreated:
    """The registry's metrics without the ``*_created`` samples prometheus_client adds to
    counters and histograms: the multiprocess exposition has none, so both modes expose the
    same series, and scrapes stay half the size."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():  # fresh Metric objects on every collect
            created = metric.name + "_created"
            metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


def _multiprocess_dir_from(value: Any) -> str | None:
    if value is _FROM_ENV:
        return multiprocess_dir()
    return None if value is None else os.fspath(value)


_multiprocess_claimed = False


def _claim_multiprocess() -> None:
    # two registries would keep two in-memory copies of the same mmap entries and
    # overwrite each other's counts: one per process, which get_metrics() guarantees
    global _multiprocess_claimed
    with _process_lock:
        if _multiprocess_claimed:
            raise RuntimeError(
                "a multiprocess MetricsRegistry exists in this process already: use get_metrics()"
            )
        _multiprocess_claimed = True


_process_metrics: MetricsRegistry | None = None


def get_metrics(environ: Mapping[str, str] | None = None) -> MetricsRegistry:
    """This process's registry, created on the first call (multiprocess when
    ``PROMETHEUS_MULTIPROC_DIR`` is set in ``environ``, default ``os.environ``)."""
    global _process_metrics
    with _process_lock:
        if _process_metrics is None:
            _process_metrics = MetricsRegistry(multiprocess_dir(environ))
        return _process_metrics


class MetricsEndpoint:
    """Raw ASGI endpoint for ``GET /metrics``: flush, render (off the loop), send."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: MetricsRegistry | None = None) -> None:
        self._metrics = metrics  # None: the process registry, looked up per scrape

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        metrics = self._metrics if self._metrics is not None else get_metrics()
        metrics.flush()
        # multiprocess collection reads and merges every worker's files: not on the loop
        body = await asyncio.to_thread(generate_latest, metrics.exposition)
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# the one to mount: binds to get_metrics() at the first scrape, never at import
metrics_endpoint = MetricsEndpoint()

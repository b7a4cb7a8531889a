"""The metric families of the metrics contract (docs/contracts.md, "Metrics"), on our registry.

``MetricFamilies(registry)`` creates every family once; ``gateway.monitoring.metrics.prometheus``
makes one per process. Counters are declared without ``_total``: prometheus_client appends
it (``modelgate_requests`` is exposed as ``modelgate_requests_total``).

Gauges carry a ``multiprocess_mode`` (used only under ``PROMETHEUS_MULTIPROC_DIR``). Every
gauge uses a ``live*`` mode: its values come from a worker's in-memory state (its own ring
buffers, its own loaded sessions), which dies with the worker, so a dead worker's value must
drop out (``mark_process_dead`` deletes only ``live*`` files). None uses ``all``/``liveall``,
which would add a ``pid`` label and one series per worker; each mode below folds the workers
into one series per label set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Which routing rule chose the version: the ``route`` label, indexed by these constants.
ROUTE_URL, ROUTE_HEADER, ROUTE_CHALLENGER, ROUTE_STICKY, ROUTE_WEIGHTED, ROUTE_SHADOW = range(6)
ROUTES: tuple[str, ...] = ("url", "header", "challenger", "sticky", "weighted", "shadow")
# the routes a client request can take: their (route, 200) series are bound up front
CLIENT_ROUTES: tuple[int, ...] = (
    ROUTE_URL,
    ROUTE_HEADER,
    ROUTE_CHALLENGER,
    ROUTE_STICKY,
    ROUTE_WEIGHTED,
)

# 50 µs .. 5 s: a tiny forest answers in ~10 µs of ORT time, a request in ~100 µs; the
# 0.1 s bound is the health check's p95 threshold.
DURATION_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
# rows per ORT call: 1 .. 256 (the largest batch a batcher or client sends in practice)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# top-class probability; 0.6 is the low-confidence threshold (docs/lifecycle.md, "Health")
CONFIDENCE_BUCKETS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)

VARIANT = ("model", "version")


class MetricFamilies:
    """The sixteen families of the contract and the later additions, on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter(
            "modelgate_requests",
            "Requests served by a model version, by routing rule and HTTP status",
            (*VARIANT, "route", "code"),
            registry=r,
        )
        self.request_duration = Histogram(
            "modelgate_request_duration_seconds",
            "Time from receiving a request to its inference result, in seconds",
            VARIANT,
            registry=r,
            buckets=DURATION_BUCKETS,
        )
        self.inference_duration = Histogram(
            "modelgate_inference_duration_seconds",
            "onnxruntime time of one (batched) call, in seconds",
            VARIANT,
            registry=r,
            buckets=DURATION_BUCKETS,
        )
        self.batch_size = Histogram(
            "modelgate_batch_size",
            "Rows per onnxruntime call",
            VARIANT,
            registry=r,
            buckets=BATCH_BUCKETS,
        )
        self.predictions = Counter(
            "modelgate_predictions",
            "Predicted rows by predicted class (empty class for regressors)",
            (*VARIANT, "class"),
            registry=r,
        )
        self.confidence = Histogram(
            "modelgate_prediction_confidence",
            "Top-class probability of each predicted row",
            VARIANT,
            registry=r,
            buckets=CONFIDENCE_BUCKETS,
        )
        self.low_confidence = Counter(
            "modelgate_low_confidence",
            "Predicted rows whose top-class probability is below the low-confidence threshold",
            VARIANT,
            registry=r,
        )
        # drift: each worker measures its own window; the worst one is what an alert wants
        self.feature_psi = Gauge(
            "modelgate_feature_psi",
            "Population stability index of a feature's live window against its reference",
            (*VARIANT, "feature"),
            registry=r,
            multiprocess_mode="livemax",
        )
        self.prediction_psi = Gauge(
            "modelgate_prediction_psi",
            "Population stability index of the predictions against the reference",
            VARIANT,
            registry=r,
            multiprocess_mode="livemax",
        )
        # quality ratios: the worst worker's window (alerts fire on a low value)
        self.shadow_agreement = Gauge(
            "modelgate_shadow_agreement_ratio",
            "Share of mirrored rows on which a shadow version agreed with the primary",
            VARIANT,
            registry=r,
            multiprocess_mode="livemin",
        )
        self.shadow_dropped = Counter(
            "modelgate_shadow_dropped",
            "Shadow copies dropped because the mirror queue was full",
            VARIANT,
            registry=r,
        )
        # every worker publishes the same weights from the same registry state; during a
        # change the newest write is the new routing
        self.traffic_weight = Gauge(
            "modelgate_traffic_weight",
            "Weighted-routing share of a version in percent (the traffic API's weight)",
            VARIANT,
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        # min: 0 as soon as one live worker reports the version unloaded (its requests
        # there would fail), 1 when every worker that bound it has it loaded
        self.model_loaded = Gauge(
            "modelgate_model_loaded",
            "1 when the version is loaded and can serve, 0 otherwise",
            VARIANT,
            registry=r,
            multiprocess_mode="livemin",
        )
        self.live_accuracy = Gauge(
            "modelgate_live_accuracy",
            "Accuracy of the version's predictions against label feedback",
            VARIANT,
            registry=r,
            multiprocess_mode="livemin",
        )
        # label-free monitors: the worst worker's window (livemax for the error, whose
        # alert fires on a high value; livemin for the accuracy, which fires on a low one)
        self.multivariate_drift_error = Gauge(
            "modelgate_multivariate_drift_error",
            "Mean PCA reconstruction error of the live window (multivariate drift)",
            VARIANT,
            registry=r,
            multiprocess_mode="livemax",
        )
        self.estimated_accuracy = Gauge(
            "modelgate_estimated_accuracy",
            "Accuracy estimated from calibrated confidence scores, without labels",
            VARIANT,
            registry=r,
            multiprocess_mode="livemin",
        )
        self.rollbacks = Counter(
            "modelgate_rollbacks",
            "Rollbacks of a model to its previous production version, by reason",
            ("model", "reason"),
            registry=r,
        )
        self.input_errors = Counter(
            "modelgate_input_errors",
            "Requests refused as bad input (HTTP 4xx), by reason",
            ("model", "reason"),
            registry=r,
        )
        # experiment outcomes, counted by the worker that received them (feedback endpoint)
        self.experiment_outcomes = Counter(
            "modelgate_experiment_outcomes",
            "Outcomes accepted through the feedback endpoint, by the variant they joined",
            (*VARIANT, "metric"),
            registry=r,
        )
        self.outcomes_dropped = Counter(
            "modelgate_outcomes_dropped",
            "Outcomes not recorded, by reason (unknown, expired, invalid, duplicate)",
            ("model", "reason"),
            registry=r,
        )

"""An MLflow model (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN/PATH``) as a
fitted estimator, a sample and the lineage MLflow recorded for it; and the report-back tags.

Needs the ``mlflow`` extra; mlflow is imported inside the functions, so ``converters``
imports without it. Every failure is a ``MlflowImportError`` with a one-line message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import BaseEstimator

from converters.errors import ConversionError, EstimatorError
from converters.estimator import check_estimator
from converters.lineage import json_safe
from converters.schema import align_sample, infer_features

# flavours whose loaded object is a scikit-learn(-API) estimator modelgate converts
FLAVOURS = ("sklearn", "xgboost", "lightgbm")
_URI = re.compile(
    r"^(?:models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))"
    r"|runs:/(?P<run>[0-9a-zA-Z]+)/(?P<path>.+))$"
)
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_GIT_TAG = "mlflow.source.git.commit"
# a dead server must fail in seconds, not after mlflow's default retries with backoff
_CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


class MlflowImportError(ConversionError):
    """The MLflow side failed: server, credentials, unknown model, flavour, signature."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed MLflow model URI."""

    uri: str
    name: str | None = None
    alias: str | None = None
    version: str | None = None
    run_id: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Imported:
    """What ``load`` found: the estimator, MLflow's input example (or None), the
    metadata for ``publish`` (lineage overrides plus the ``mlflow`` section), the signature."""

    estimator: BaseEstimator
    input_example: pd.DataFrame | None
    metadata: dict[str, Any]
    git_commit: str | None
    signature: list[dict[str, Any]] | None = field(default=None)


def parse_uri(uri: str) -> ModelRef:
    match = _URI.match(uri.strip())
    if match is None:
        raise MlflowImportError(
            f"invalid MLflow model URI {uri!r}: expected models:/NAME@ALIAS, "
            "models:/NAME/VERSION or runs:/RUN_ID/PATH"
        )
    return ModelRef(
        uri=uri.strip(),
        name=match["name"],
        alias=match["alias"],
        version=match["version"],
        run_id=match["run"],
        path=match["path"],
    )


@contextlib.contextmanager
def _client_env() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in _CLIENT_ENV}
    os.environ.update({k: v for k, v in _CLIENT_ENV.items() if saved[k] is None})
    try:
        with warnings.catch_warnings():  # mlflow's advice (pip, git, type hints) is noise here
            warnings.simplefilter("ignore")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def check_reachable(tracking_uri: str, timeout: float = 10.0) -> None:
    """MlflowImportError unless an http(s) tracking server answers (any HTTP status counts)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered; credentials and paths are judged by the real calls
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MlflowImportError(
            f"cannot reach the MLflow tracking server at {tracking_uri}: {reason}"
        ) from None


def _failure(exc: Exception, tracking_uri: str, what: str) -> MlflowImportError:
    """One line for an MlflowException of ``what`` (e.g. "model version churn@champion")."""
    code = getattr(exc, "error_code", "") or ""
    status = getattr(exc, "get_http_status_code", lambda: None)()
    text = " ".join(str(exc).split())
    if (
        code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        or status in (401, 403)
        or (" 401" in text or " 403" in text)
    ):
        return MlflowImportError(
            f"the MLflow tracking server at {tracking_uri} refused the credentials "
            "(set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN)"
        )
    if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND") or (
        "not found" in text.lower() or "does not exist" in text.lower()
    ):
        return MlflowImportError(f"MLflow at {tracking_uri} has no {what}")
    if "Max retries" in text or "Connection" in text:
        return MlflowImportError(f"cannot reach the MLflow tracking server at {tracking_uri}")
    return MlflowImportError(f"MLflow {what}: {text[:300]}")


def _resolve_version(client: Any, ref: ModelRef, tracking_uri: str) -> Any:
    what = (
        f"registered model {ref.name!r} with alias {ref.alias!r}"
        if ref.alias
        else f"version {ref.version} of registered model {ref.name!r}"
    )
    try:
        if ref.alias:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except Exception as exc:  # mlflow raises MlflowException / RestException subclasses
        raise _failure(exc, tracking_uri, what) from None


def _datasets(run: Any) -> list[dict[str, Any]]:
    out = []
    for item in getattr(run.inputs, "dataset_inputs", None) or []:
        tags = {t.key: t.value for t in item.tags or []}
        ds = item.dataset
        out.append(
            {
                "name": ds.name,
                "digest": ds.digest,
                "source_type": ds.source_type,
                "source": ds.source,
                "context": tags.get("mlflow.data.context"),
            }
        )
    return out


def _training_dataset(datasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    for ds in datasets:
        if ds["context"] == "training":
            return ds
    return datasets[0] if datasets else None


def _flavour_estimator(local: str, model: Any) -> tuple[str, BaseEstimator]:
    flavours = sorted(model.flavors)
    usable = [f for f in FLAVOURS if f in model.flavors]
    if not usable:
        raise MlflowImportError(
            f"the MLflow model has the flavour(s) {', '.join(flavours)}: modelgate converts "
            f"{', '.join(FLAVOURS)} models only"
        )
    flavour = usable[0]
    import importlib

    loader = importlib.import_module(f"mlflow.{flavour}")
    try:
        estimator = loader.load_model(local)
    except ImportError as exc:
        raise MlflowImportError(
            f"loading the MLflow {flavour} flavour needs {exc.name or exc}: "
            "pip install 'modelgate[frameworks]'"
        ) from None
    try:
        check_estimator(estimator, f"the MLflow {flavour} flavour")
    except EstimatorError as exc:
        raise MlflowImportError(f"{exc} (log the scikit-learn API model instead)") from None
    return flavour, estimator


def _signature(model: Any) -> list[dict[str, Any]] | None:
    signature = getattr(model, "signature", None)
    if signature is None or signature.inputs is None:
        return None
    return [dict(col) for col in signature.inputs.to_dict()]


def _example(model: Any, local: str) -> pd.DataFrame | None:
    try:
        example = model.load_input_example(local)
    except Exception:  # a missing or unreadable example file: as if none was logged
        return None
    if example is None:
        return None
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, dict):
        return pd.DataFrame(example)
    return pd.DataFrame(example)


def load(uri: str, tracking_uri: str, workdir: str | Path | None = None) -> Imported:
    """Resolve ``uri`` on the tracking server, download and load the model, read its run."""
    ref = parse_uri(uri)
    check_reachable(tracking_uri)
    with _client_env():
        import mlflow
        from mlflow.models import Model
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        version = None
        run_id = ref.run_id
        if ref.name is not None:
            version = _resolve_version(client, ref, tracking_uri)
            run_id = version.run_id
        download = f"models:/{ref.name}/{version.version}" if version is not None else ref.uri
        folder = workdir or tempfile.mkdtemp(prefix="modelgate-mlflow-")
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=download,
                dst_path=str(folder),
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
        except Exception as exc:
            raise _failure(exc, tracking_uri, f"model at {ref.uri}") from None
        try:
            model = Model.load(local)
        except Exception as exc:
            raise MlflowImportError(f"{ref.uri}: not an MLflow model ({exc})") from None
        flavour, estimator = _flavour_estimator(local, model)
        run = None
        if run_id:
            try:
                run = client.get_run(run_id)
            except Exception as exc:
                raise _failure(exc, tracking_uri, f"run {run_id}") from None
        experiment = None
        if run is not None:
            with contextlib.suppress(Exception):  # a deleted experiment keeps its id
                experiment = client.get_experiment(run.info.experiment_id).name
    section = _mlflow_section(ref, tracking_uri, version, run, experiment, flavour, model)
    metadata: dict[str, Any] = {"mlflow": section}
    training = _training_dataset(section["datasets"])
    train: dict[str, Any] = {}
    if training is not None:
        train["dataset_version"] = training["name"]
        train["dataset_fingerprint"] = training["digest"]
        train["dataset_source"] = training["source"]
    if run is not None and run.info.start_time:
        started = dt.datetime.fromtimestamp(run.info.start_time / 1000, tz=dt.UTC)
        train["date"] = started.isoformat()
    if train:
        metadata["training"] = train
    commit = str((section.get("tags") or {}).get(_GIT_TAG) or "").lower() or None
    return Imported(
        estimator=estimator,
        input_example=_example(model, local),
        metadata=json_safe(metadata),
        git_commit=commit if commit and _SHA.match(commit) else None,
        signature=section["signature"],
    )


def _mlflow_section(
    ref: ModelRef,
    tracking_uri: str,
    version: Any,
    run: Any,
    experiment: str | None,
    flavour: str,
    model: Any,
) -> dict[str, Any]:
    return {
        "tracking_uri": tracking_uri,
        "model_uri": ref.uri,
        "registered_model": version.name if version is not None else None,
        "registry_version": str(version.version) if version is not None else None,
        "alias": ref.alias,
        "flavour": flavour,
        "run_id": run.info.run_id if run is not None else ref.run_id,
        "run_name": run.info.run_name if run is not None else None,
        "experiment_id": run.info.experiment_id if run is not None else None,
        "experiment": experiment,
        "params": dict(run.data.params) if run is not None else {},
        "metrics": dict(run.data.metrics) if run is not None else {},
        "tags": dict(run.data.tags) if run is not None else {},
        "datasets": _datasets(run) if run is not None else [],
        "signature": _signature(model),
    }


def _signature_kind(mlflow_type: str) -> str:
    return "categorical" if mlflow_type in ("string", "binary") else "numerical"


def check_signature(
    signature: list[dict[str, Any]] | None, estimator: BaseEstimator, features: pd.DataFrame
) -> dict[str, Any]:
    """Compare MLflow's input signature with the features the converted schema will hold.

    Returns the comparison for the lineage; MlflowImportError names the differing columns.
    """
    if not signature:
        return {"checked": False, "reason": "the MLflow model has no input signature"}
    aligned = align_sample(estimator, features)
    schema = {f["name"]: f["kind"] for f in infer_features(aligned)}
    named = [col for col in signature if col.get("name")]
    if not named:
        return {"checked": False, "reason": "the MLflow signature has unnamed (tensor) inputs"}
    logged = {str(col["name"]): _signature_kind(str(col.get("type"))) for col in named}
    only_mlflow = [c for c in logged if c not in schema]
    only_schema = [c for c in schema if c not in logged]
    kinds = [c for c in logged if c in schema and logged[c] != schema[c]]
    problems = []
    if only_mlflow:
        problems.append(f"in the MLflow signature only: {', '.join(only_mlflow)}")
    if only_schema:
        problems.append(f"in the converted schema only: {', '.join(only_schema)}")
    if kinds:
        listing = ", ".join(f"{c} ({logged[c]} in MLflow, {schema[c]} here)" for c in kinds)
        problems.append(f"different kinds: {listing}")
    if problems:
        raise MlflowImportError(
            "the MLflow model signature does not match the converted schema: " + "; ".join(problems)
        )
    return {"checked": True, "matches": True, "columns": list(logged)}


def report_tags(stage: str, version: str, stage_changed_at: str | None) -> dict[str, str]:
    """The tags modelgate sets on an MLflow model version it imported."""
    tags = {"modelgate.stage": stage, "modelgate.version": version}
    if stage == "production" and stage_changed_at:
        tags["modelgate.deployed_at"] = stage_changed_at
    return tags


def set_tags(tracking_uri: str, name: str, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on MLflow model version NAME/VERSION (aliases are never touched)."""
    check_reachable(tracking_uri)
    with _client_env():
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        for key, value in tags.items():
            try:
                client.set_model_version_tag(name, version, key, value)
            except Exception as exc:
                raise _failure(
                    exc, tracking_uri, f"version {version} of registered model {name!r}"
                ) from None

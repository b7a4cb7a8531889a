"""Turn a registered version into a loaded, warmed-up ``Variant`` ready to take traffic.

verified bytes (the registry checks sha256) -> signature (schema) -> onnxruntime session
-> graph inputs checked against the schema -> warm-up -> measured single-row latency ->
batching mode -> batcher. The slow steps run in a worker thread so the gateway keeps
serving while a new version loads. Any failure raises ``LoadFailed`` with one line saying
what went wrong; such a version never takes traffic.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import orjson

from gateway.dataplane.batcher import Batcher, choose_mode
from gateway.dataplane.pool import InferencePool
from gateway.dataplane.runner import ModelLoadError, OnnxRunner
from gateway.dataplane.signature import ModelSignature
from gateway.dataplane.snapshot import Variant
from gateway.settings import Settings
from registry.errors import RegistryError
from registry.models import ModelVersion, RegistryView


class ServingRegistry(Protocol):
    """The part of the registry the serving control plane reads (SqliteRegistry has it)."""

    async def serving_view(
        self, model: str | None = None, *, state_prefix: str | tuple[str, ...] | None = None
    ) -> RegistryView: ...

    async def generation(self) -> int: ...

    async def read_artifact(self, model: str, version: str) -> bytes:
        """The artifact's bytes, sha256-verified (raises ArtifactError)."""
        ...


class LoadFailed(Exception):
    """A version could not be loaded; the message is meant for operators."""


class Loader(Protocol):
    """``load_variant``'s signature (the publisher takes one; tests wrap it)."""

    async def __call__(
        self,
        registry: ServingRegistry,
        version: ModelVersion,
        settings: Settings,
        pool: InferencePool | None = None,
    ) -> Variant: ...


def _build_runner(
    data: bytes, signature: ModelSignature, reference: Any, settings: Settings
) -> tuple[OnnxRunner, bool]:
    runner = OnnxRunner(data, intra_op_threads=settings.ort_intra_op_threads)
    expected = {spec.name for spec in signature.inputs}
    if set(runner.input_names) != expected:
        raise LoadFailed(
            f"the ONNX graph takes inputs {sorted(runner.input_names)} "
            f"but the schema declares {sorted(expected)}"
        )
    missing = [o.name for o in signature.outputs if o.name not in runner.output_names]
    if missing:
        raise LoadFailed(f"the ONNX graph has no outputs {missing} declared by the schema")
    feeds = signature.dummy_feeds(1, reference)
    runner.warm_up(feeds)
    runner.measure(feeds)
    return runner, runner.batchable(feeds, 1)


async def load_variant(
    registry: ServingRegistry,
    version: ModelVersion,
    settings: Settings,
    pool: InferencePool | None = None,
) -> Variant:
    """``pool``: where the version's thread-mode batches run (default: the process's)."""
    label = f"{version.model}:{version.version}"
    try:
        data = await registry.read_artifact(version.model, version.version)
        signature = ModelSignature.from_schema(version.schema, max_rows=settings.max_rows)
        runner, batchable = await asyncio.to_thread(
            _build_runner, data, signature, version.reference, settings
        )
    except LoadFailed:
        raise
    except (RegistryError, ModelLoadError, ValueError, OSError, RuntimeError) as exc:
        raise LoadFailed(f"{label}: {_one_line(exc)}") from exc
    mode = choose_mode(settings.inference_mode, runner.single_row_us, settings.inline_max_us)
    batcher = Batcher(
        runner.run,
        mode=mode,
        batching=settings.batching and batchable,
        max_batch_size=settings.max_batch_size,
        max_delay_s=settings.max_batch_delay_s,
        label=label,
        pool=pool,
    )
    metadata = signature.metadata(version.model, [version.version])
    return Variant(
        model=version.model,
        version=version.version,
        sha256=version.artifact_sha256,
        signature=signature,
        runner=runner,
        batcher=batcher,
        schema=version.schema,
        reference=version.reference,
        metadata_body=orjson.dumps(metadata),
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]

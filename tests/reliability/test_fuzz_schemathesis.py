"""schemathesis against a real ``modelgate serve`` (2 workers, zoo registry, admin token).

Every documented operation is fuzzed in both generation modes (schema-conforming and
schema-violating cases). Checks on every response: no 5xx, status code, content type,
headers and body conform to the document, a schema-violating request is refused (4xx),
an admin operation refuses a request without the token, and every error body is exactly
``{"error": str, ...}`` JSON, never a traceback. Admin fuzzing really changes traffic and
stages; afterwards the registry must be consistent and every model must still answer with
the predictions a direct onnxruntime session computes.

Path parameters are narrowed to the zoo's names and versions plus an unknown one, so the
fuzzer reaches real models; the schema-violating mode sends arbitrary names anyway.
``MODELGATE_FUZZ_EXAMPLES`` (default 15) sets the cases per operation and mode.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi.document import build_document
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess, running_server
from tests.support.registry_copy import private_copy

pytestmark = pytest.mark.slow  # schemathesis against a two-worker server

TOKEN = "fuzz-token"
EXAMPLES = int(os.environ.get("MODELGATE_FUZZ_EXAMPLES", "15"))
MODELS = ["clf", "reg", "mixed", "ghost"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0", "9.9.9"]
# (operation, mode): an operation without parameters or body has nothing to violate
CASES = [
    pytest.param(op["operationId"], mode, id=f"{op['operationId']}-{mode.value}")
    for item in build_document()["paths"].values()
    for op in item.values()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "parameters" in op or "requestBody" in op
]
# operation id -> mode -> status code -> count: the closing note's tally
TALLY: dict[str, Counter] = {}


class ErrorBodyShape(AssertionError):
    pass


class ServerError(AssertionError):
    pass


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx but the contract's 503 (not ready), which the document declares."""
    if response.status_code >= 500 and response.status_code != 503:
        raise ServerError(f"{response.status_code}: {response.content[:300]!r}")
    return True


def error_body_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx with a body is JSON ``{"error": str, ...}`` and names no traceback."""
    text = response.content.decode("utf-8", "replace")
    if "Traceback" in text or 'File "' in text:
        raise ErrorBodyShape(f"traceback text in the response: {text[:300]}")
    if response.status_code < 400 or not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        raise ErrorBodyShape(f"error body is not JSON: {text[:300]}") from None
    if type(body) is not dict or type(body.get("error")) is not str or not body["error"]:
        raise ErrorBodyShape(f"error body is not {{'error': str}}: {text[:300]}")
    return True


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    error_body_shape,
]


def fuzz_document() -> dict[str, Any]:
    document = build_document()
    for item in document["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    values = MODELS if param["name"] == "name" else VERSIONS
                    param["schema"] = {"type": "string", "enum": values}
    return document


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, zoo_template) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("fuzz")
    home = private_copy(zoo_template, root)
    with running_server(home, root / "server.log", ["--workers", "2"], token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def fuzz_schema() -> Any:
    return schemathesis.openapi.from_dict(fuzz_document())


@pytest.mark.parametrize(("op_id", "mode"), CASES)
def test_fuzz_operation(fuzz_server, fuzz_schema, op_id: str, mode: GenerationMode) -> None:
    operation = fuzz_schema.find_operation_by_id(op_id)
    secured = bool(operation.definition.raw.get("security"))
    headers = fuzz_server.auth if secured else {}
    tally = TALLY.setdefault(f"{op_id} {mode.value}", Counter())

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # a negative case may drop the Authorization header on purpose: adding the token
        # back would turn it into a valid request the check then expects to be refused
        dropped_auth = mode is GenerationMode.NEGATIVE and "Authorization" not in (
            case.headers or {}
        )
        sent = {} if dropped_auth else headers
        response = case.call(base_url=fuzz_server.url, headers=sent, timeout=30)
        tally[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=sent)

    run()


ROWS = np.array([[0.5, -1.0, 0.25, 2.0], [-0.3, 0.8, -1.5, 0.1], [1.2, 0.4, 0.0, -0.7]], np.float32)


async def _registry_facts(home: Path, model: str, version: str) -> tuple[list[str], bytes, int]:
    """Production versions of ``model``, the artifact of ``version``, audit rows readable."""
    registry = await open_registry(home)
    try:
        versions = await registry.list_versions(model)
        production = [v.version for v in versions if v.stage.value == "production"]
        artifact = await registry.read_artifact(model, version)
        audit = await registry.audit(limit=10_000)
    finally:
        await registry.close()
    return production, artifact, len(audit)


def _restore_serving(server: GatewayProcess, model: str) -> str:
    """Cancel a rollout, stop an experiment, load the model, give it a production version
    and 100 % to it."""
    server.fresh("DELETE", f"/admin/models/{model}/rollout", headers=server.auth)
    server.fresh("DELETE", f"/admin/models/{model}/experiment", headers=server.auth)
    loaded = server.fresh("POST", f"/v2/repository/models/{model}/load", headers=server.auth)
    assert loaded.status_code == 200, loaded.text
    view = server.fresh("GET", f"/admin/models/{model}", headers=server.auth).json()
    production = view["production_version"]
    if production is None:
        production = view["latest_version"]
        # a version must be loaded to become production: stage it (loaded by the worker
        # that takes the change), then switch, retrying while the change lands on the
        # other worker before its watcher has loaded the version too
        staged = server.fresh(
            "POST",
            f"/admin/models/{model}/versions/{production}/stage",
            json={"stage": "staging", "reason": "after fuzzing"},
            headers=server.auth,
        )
        assert staged.status_code == 200 or "already staging" in staged.text, staged.text
        body = {"version": production, "force": True, "reason": "after fuzzing"}
        for _ in range(100):
            switched = server.fresh(
                "POST", f"/admin/models/{model}/switch", json=body, headers=server.auth
            )
            if switched.status_code != 409:
                break
            time.sleep(0.1)
        assert switched.status_code == 200, switched.text
    reset = server.fresh(
        "PUT",
        f"/admin/models/{model}/traffic",
        json={"routes": [], "shadow": [], "challenger": None},
        headers=server.auth,
    )
    assert reset.status_code == 200, reset.text
    return production


def _converge(server: GatewayProcess, path: str, body: dict, version: str) -> None:
    """Bounded wait until both workers serve ``version`` (their watchers poll the registry)."""
    streak = 0
    for _ in range(300):
        answer = server.fresh("POST", path, json=body)
        ok = answer.status_code == 200 and answer.headers.get("x-model-version") == version
        streak = streak + 1 if ok else 0
        if streak == 8:
            return
        if not ok:
            time.sleep(0.05)
    raise AssertionError(f"{path} never converged to {version}: {answer.status_code} {answer.text}")


def test_after_fuzzing_the_server_is_consistent_and_predicts_correctly(fuzz_server) -> None:
    assert TALLY, "run with the fuzz tests"
    for model in ("clf", "reg"):
        production = _restore_serving(fuzz_server, model)
        facts = asyncio.run(_registry_facts(fuzz_server.home, model, production))
        assert facts[0] == [production]  # exactly one production version
        assert facts[2] > 0
        session = ort.InferenceSession(facts[1], providers=["CPUExecutionProvider"])
        expected = dict(
            zip(
                [o.name for o in session.get_outputs()],
                session.run(None, {"input": ROWS}),
                strict=True,
            )
        )
        body = {
            "inputs": [
                {
                    "name": "input",
                    "shape": [3, 4],
                    "datatype": "FP32",
                    "data": ROWS.ravel().tolist(),
                }
            ]
        }
        _converge(fuzz_server, f"/v2/models/{model}/infer", body, production)
        for _ in range(4):  # new connections: both workers answer
            answer = fuzz_server.fresh("POST", f"/v2/models/{model}/infer", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-model-version"] == production
            outputs = {o["name"]: o for o in answer.json()["outputs"]}
            for name, value in expected.items():
                got = np.asarray(outputs[name]["data"]).reshape(value.shape)
                np.testing.assert_allclose(got, value, rtol=1e-6, atol=1e-6)
    mixed = _restore_serving(fuzz_server, "mixed")
    _converge(
        fuzz_server, "/predict/mixed", {"instances": [{"a": 0.1, "b": -2.0, "plan": "pro"}]}, mixed
    )
    named = fuzz_server.fresh(
        "POST", "/predict/mixed", json={"instances": [{"a": 0.1, "b": -2.0, "plan": "pro"}]}
    )
    assert named.status_code == 200 and named.json()["model_version"] == mixed
    log = fuzz_server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    cases = sum(sum(c.values()) for c in TALLY.values())
    statuses: Counter = Counter()
    for counter in TALLY.values():
        statuses.update(counter)
    print(f"\nschemathesis: {len(TALLY)} operation-modes, {cases} cases, statuses {dict(statuses)}")
    assert statuses[500] == 0 and cases >= len(TALLY)

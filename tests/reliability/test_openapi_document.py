"""The OpenAPI document against the implementation: same routes, valid, served, honest."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from gateway.app import create_app
from gateway.openapi.document import build_document
from gateway.openapi.endpoints import render_docs
from gateway.settings import Settings
from tests.support.asgi_app import running

TOKEN = "openapi-secret"
METHODS = {"GET", "PUT", "POST", "DELETE", "PATCH"}


def _app(home):
    settings = Settings.from_environ({}, home=str(home), admin_token=TOKEN)
    return create_app(settings)


def _implemented(app) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.routes:
        assert isinstance(route, Route), route
        for method in route.methods or ():
            if method in METHODS:  # Starlette adds HEAD to every GET
                pairs.add((route.path, method))
    return pairs


def _documented(document) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


@pytest.fixture
async def openapi_client(zoo_home) -> AsyncIterator[httpx.AsyncClient]:
    async with running(_app(zoo_home)) as served:
        yield served.http


def test_every_route_is_documented_and_every_operation_exists(zoo_home) -> None:
    implemented = _implemented(_app(zoo_home))
    documented = _documented(build_document())
    assert implemented - documented == set(), "routes missing from the document"
    assert documented - implemented == set(), "documented operations the app does not serve"
    assert len(implemented) >= 35


def test_the_document_is_valid_openapi() -> None:
    document = build_document()
    validate(document)
    assert document["openapi"].startswith("3.1")
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_path_parameters_match_the_templates() -> None:
    for path, item in build_document()["paths"].items():
        in_template = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == in_template, (method, path)


def test_admin_and_repository_operations_require_the_bearer_token() -> None:
    document = build_document()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, op in item.items():
            secured = path.startswith(("/admin/", "/v2/repository/", "/console/api/"))
            assert bool(op.get("security")) == secured, (method, path)
            assert ("401" in op["responses"]) == secured, (method, path)


def test_every_error_response_is_the_error_shape() -> None:
    for path, item in build_document()["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                schema = response["content"]["application/json"]["schema"]
                if op["tags"] == ["health"] and status == "503":
                    # a probe's "not ready" is its own body: {"ready": false}, {"name", "ready"}
                    probes = {"ServerReady", "ModelReady"}
                    assert schema["$ref"].rsplit("/", 1)[1] in probes, (method, path)
                else:
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
            assert not any(s.startswith("5") and s != "503" for s in op["responses"])


async def test_served_document_and_docs_page(openapi_client) -> None:
    served = await openapi_client.get("/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == orjson.loads(orjson.dumps(build_document()))
    page = await openapi_client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for path in build_document()["paths"]:
        assert f"<code>{path}</code>" in text
    # self-contained: nothing fetched from elsewhere
    assert "<script" not in text and "<link" not in text and "src=" not in text
    assert 'href="openapi.json"' in text


def test_docs_page_escapes_what_it_shows() -> None:
    document = build_document()
    document["info"]["title"] = "<b>x</b>"
    assert "&lt;b&gt;x&lt;/b&gt;" in render_docs(document)


async def test_secured_operations_refuse_a_missing_token_and_open_ones_do_not(
    openapi_client,
) -> None:
    for path, item in build_document()["paths"].items():
        concrete = path.replace("{name}", "clf").replace("{version}", "1.0.0")
        for method, op in item.items():
            answer = await openapi_client.request(method.upper(), concrete)
            if op.get("security"):
                assert answer.status_code == 401, (method, path)
                assert answer.json() == {"error": "missing or invalid admin bearer token"}
            else:
                assert answer.status_code != 401, (method, path)
            assert str(answer.status_code) in op["responses"], (method, path, answer.status_code)

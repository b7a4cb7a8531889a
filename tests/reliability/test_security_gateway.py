"""Security of a real ``modelgate serve``: raw HTTP on a socket, so paths and headers reach
the server exactly as written (no client normalisation).

* the admin token is compared in constant time, never logged, never echoed;
* admin refused with a wrong token through encoded / odd path variants, no state change;
* request ids and model names with CR/LF, control chars, 10 KB, unicode: never break a
  header, never injected into the log;
* no path traversal through names or versions on any endpoint that takes them; artifacts
  are addressed by sha256 only.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.admin.auth import AdminAuth
from registry.artifacts import ArtifactStore
from registry.errors import RegistryError
from registry.sqlite.store import open_registry
from tests.support.gateway_process import GatewayProcess, running_server
from tests.support.registry_copy import private_copy

pytestmark = pytest.mark.slow  # a real `modelgate serve` on loopback

TOKEN = "s3cr3t-Admin-Token-0123456789"
BODY = b'{"instances":[[0.5,-1.0,0.25,2.0]]}'
TRAFFIC = b'{"routes":[{"version":"1.1.0","weight":100}]}'


@pytest.fixture(scope="module")
def server(
    zoo_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("security")
    home = private_copy(zoo_template, root)
    with running_server(home, root / "server.log", token=TOKEN) as gateway:
        yield gateway


def raw(
    server: GatewayProcess, method: bytes, path: bytes, headers: bytes = b"", body: bytes = b""
) -> tuple[int, bytes, bytes]:
    """(status, header block, body) of one request written byte for byte."""
    request = method + b" " + path + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
    if body:
        request += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    request += headers + b"\r\n" + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, payload


def state(home: Path) -> tuple:
    async def read() -> tuple:
        registry = await open_registry(home)
        try:
            deployment = await registry.get_deployment("clf")
            audit = await registry.audit(limit=1000)
            stages = [(v.version, v.stage.value) for v in await registry.list_versions("clf")]
            return deployment.routes, len(audit), stages
        finally:
            await registry.close()

    return asyncio.run(read())


def test_the_token_comparison_is_constant_time():
    source = inspect.getsource(AdminAuth.authorized)
    assert "hmac.compare_digest(" in source and "==" not in source
    auth = AdminAuth(TOKEN)
    assert auth.authorized(f"Bearer {TOKEN}") and auth.authorized(f"bearer  {TOKEN} ".encode())
    for wrong in (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), ""):
        assert not auth.authorized(f"Bearer {wrong}")
    for header in ("Bearer", f"Basic {TOKEN}", TOKEN, None):
        assert not auth.authorized(header)
    assert not auth.authorized("Bearer \xff" + TOKEN[1:])


VARIANTS = [
    (b"GET", b"/%61dmin/models"),
    (b"GET", b"/admin/%6dodels/clf"),
    (b"PUT", b"/admin/models/clf%2Ftraffic"),
    (b"PUT", b"/admin/models/clf/traffic%2F"),
    (b"PUT", b"//admin/models/clf/traffic"),
    (b"PUT", b"/admin//models/clf/traffic"),
    (b"PUT", b"/admin/models/clf/traffic/"),
    (b"PUT", b"/ADMIN/models/clf/traffic"),
    (b"PUT", b"/Admin/Models/clf/Traffic"),
    (b"PUT", b"/v2/../admin/models/clf/traffic"),
    (b"PUT", b"/admin/models/x/../clf/traffic"),
    (b"PUT", b"/admin/models/clf/%2e%2e/clf/traffic"),
    (b"POST", b"/admin/models/clf/rollback/"),
    (b"POST", b"/admin/models/clf/versions/1.1.0/stage/"),
    (b"POST", b"/v2/repository/models/clf/unload/"),
    (b"POST", b"/v2/repository/models/clf%2F..%2Fclf/unload"),
]


@pytest.mark.parametrize(
    "auth", [b"", b"Authorization: Bearer wrong\r\n", b"Authorization: Basic x\r\n"]
)
def test_admin_is_refused_through_encoded_path_variants(server, auth):
    before = state(server.home)
    for method, path in VARIANTS:
        body = TRAFFIC if method != b"GET" else b""
        if path.endswith(b"stage/"):
            body = b'{"stage":"production"}'
        status, head, payload = raw(server, method, path, auth, body)
        if status in (301, 307, 308):  # slash redirect: the target needs the token too
            location = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"location:")
            )
            target = b"/" + location.split(b"/", 3)[3] if location.startswith(b"http") else location
            status, head, payload = raw(server, method, target, auth, body)
        assert status in (400, 401, 404, 405), (method, path, status, payload)
        assert b"Traceback" not in payload
    assert state(server.home) == before


def test_the_token_never_appears_in_the_log_or_an_error(server):
    wrong = TOKEN[:-1] + "X"
    bodies = []
    for headers in (
        f"Authorization: Bearer {wrong}\r\n".encode(),
        f"Authorization: {TOKEN}\r\n".encode(),  # no scheme
        f"Authorization: Basic {TOKEN}\r\n".encode(),
        f"Authorization: Bearer {TOKEN}\r\n".encode(),
    ):
        for method, path, body in (
            (b"GET", b"/admin/models/nope", b""),
            (b"PUT", b"/admin/models/clf/traffic", b'{"routes": 1}'),
            (b"POST", b"/admin/models/clf/versions/9.9.9/stage", b'{"stage":"bogus"}'),
            (b"POST", b"/v2/repository/models/nope/load", b""),
        ):
            status, head, payload = raw(server, method, path, headers, body)
            assert 400 <= status < 500, (path, status, payload)
            bodies.append(head + payload)
    log = server.log.read_bytes()
    for secret in (TOKEN, wrong):
        assert secret.encode() not in log
        assert all(secret.encode() not in b for b in bodies)


HOSTILE_IDS = [b"a\x01b", b"x" * 10240, "naïve-ü-id".encode(), b"id\x7f"]


@pytest.mark.parametrize("request_id", HOSTILE_IDS, ids=["ctrl", "10kb", "unicode", "del"])
def test_hostile_request_ids_never_reach_a_header_or_the_log(server, request_id):
    status, head, _ = raw(
        server, b"POST", b"/predict/clf", b"X-Request-Id: " + request_id + b"\r\n", BODY
    )
    if status == 200:
        echoed = [
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"x-request-id:")
        ]
        assert len(echoed) == 1
        assert len(echoed[0]) <= 256 and echoed[0].isascii() and echoed[0].decode().isprintable()
    else:
        assert status == 400  # refused by the HTTP parser
    assert request_id not in server.log.read_bytes()


def test_cr_lf_in_a_model_name_never_splits_a_header_or_a_log_line(server):
    for path in (b"/v2/models/clf%0d%0aX-Evil:%201/infer", b"/predict/clf%0aINFO%20forged"):
        status, head, payload = raw(server, b"POST", path, b"", BODY)
        assert status == 404 and payload.startswith(b'{"error":')
        assert b"x-evil" not in head.lower()
    log = server.log.read_bytes()
    assert b"X-Evil" not in log and b"INFO forged" not in log


TRAVERSAL = [
    b"..%2f..%2fetc%2fpasswd",
    b"%2Fetc%2Fpasswd",
    b"clf%00",
    b"..",
    b"%2e%2e",
    b"clf%00.onnx",
]
VERSION_TRAVERSAL = [*TRAVERSAL, b"1.0.0%00", b"..%2F1.0.0"]


def test_no_path_traversal_through_names_or_versions(server):
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    before = state(server.home)
    cases = []
    for name in TRAVERSAL:
        cases += [
            (b"POST", b"/predict/" + name, BODY, b""),
            (b"POST", b"/v2/models/" + name + b"/infer", BODY, b""),
            (b"GET", b"/v2/models/" + name, b"", b""),
            (b"GET", b"/v2/models/" + name + b"/ready", b"", b""),
            (b"POST", b"/v2/models/" + name + b"/feedback", b'{"id":"x","label":1}', b""),
            (b"GET", b"/admin/models/" + name, b"", auth),
            (b"PUT", b"/admin/models/" + name + b"/traffic", TRAFFIC, auth),
            (b"POST", b"/v2/repository/models/" + name + b"/load", b"", auth),
            (b"POST", b"/v2/repository/models/" + name + b"/unload", b"", auth),
        ]
    for version in VERSION_TRAVERSAL:
        cases += [
            (b"POST", b"/v2/models/clf/versions/" + version + b"/infer", BODY, b""),
            (b"GET", b"/v2/models/clf/versions/" + version, b"", b""),
            (b"GET", b"/admin/models/clf/versions/" + version, b"", auth),
            (
                b"POST",
                b"/admin/models/clf/versions/" + version + b"/stage",
                b'{"stage":"staging"}',
                auth,
            ),
        ]
        routes = b'{"routes":[{"version":"%s","weight":100}]}' % version.replace(b"%00", b"\\u0000")
        cases.append((b"PUT", b"/admin/models/clf/traffic", routes, auth))
    for method, path, body, headers in cases:
        status, _head, payload = raw(server, method, path, headers, body)
        assert 400 <= status < 500, (method, path, status, payload)
        assert payload.startswith(b'{"error":') or status in (405,), (path, payload)
        assert b"root:" not in payload
    assert state(server.home) == before
    assert b"Traceback" not in server.log.read_bytes()


def test_artifacts_are_addressed_by_sha256_only(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    for digest in ("../../etc/passwd", "/etc/passwd", "a" * 63 + "\x00", "A" * 64, "..", "a" * 65):
        with pytest.raises(RegistryError, match="invalid artifact digest"):
            store.path(digest)
    sha, _ = store.put(b"blob")
    assert store.path(sha).resolve().is_relative_to((tmp_path / "artifacts").resolve())


async def test_the_registry_refuses_traversal_model_names(zoo_home):
    registry = await open_registry(zoo_home)
    try:
        for name in ("../../etc/passwd", "/etc/passwd", "clf\x00", "..", "a/b", "clf\r\n"):
            with pytest.raises(RegistryError):
                await registry.get_version(name, "1.0.0")
            with pytest.raises(RegistryError):
                await registry.read_artifact(name, "1.0.0")
        for version in ("../1.0.0", "1.0.0\x00", "/etc/passwd"):
            with pytest.raises(RegistryError):
                await registry.read_artifact("clf", version)
    finally:
        await registry.close()

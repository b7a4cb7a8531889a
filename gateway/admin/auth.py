"""Admin bearer-token authentication.

The token is ``MODELGATE_ADMIN_TOKEN`` when set; otherwise it is generated once and kept
in ``<home>/admin-token`` (mode 0600, created atomically so that concurrent workers all
read the same token). Comparison is constant-time.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import HTTPConnection

from gateway.errors import Unauthorized
from gateway.settings import Settings


def token_file_path(settings: Settings) -> Path:
    return settings.paths.admin_token


def read_or_create_token(path: Path) -> str:
    """The token stored at ``path``, creating it (0600, atomically) when absent or empty."""
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if another process created the file meanwhile: theirs wins
            os.link(tmp, path)
        except FileExistsError:
            if path.read_text(encoding="utf-8").strip():
                return path.read_text(encoding="utf-8").strip()
            os.replace(tmp, path)  # an empty leftover file: take its place
            return token
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return token


def resolve_admin_token(settings: Settings) -> tuple[str, Path | None]:
    """(token, file it lives in or None when it comes from MODELGATE_ADMIN_TOKEN)."""
    if settings.admin_token:
        return settings.admin_token, None
    path = token_file_path(settings)
    return read_or_create_token(path), path


class AdminAuth:
    """``Authorization: Bearer <token>`` check for the admin API."""

    __slots__ = ("_expected",)

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the admin token must not be empty")
        self._expected = token.encode()

    def authorized(self, authorization: str | bytes | None) -> bool:
        if not authorization:
            return False
        raw = authorization.encode("latin-1") if isinstance(authorization, str) else authorization
        scheme, _, credentials = raw.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(credentials.strip(), self._expected)

    def require(self, connection: HTTPConnection) -> None:
        """Raise ``Unauthorized`` (401) unless the request carries the admin token."""
        if not self.authorized(connection.headers.get("authorization")):
            raise Unauthorized("missing or invalid admin bearer token")

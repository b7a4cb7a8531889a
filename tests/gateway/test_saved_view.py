"""The saved serving view: a round trip of a real registry view, and the cache it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.serving.publisher import VIEW_STATE_PREFIXES
from gateway.serving.saved_view import FILENAME, CachedArtifacts, SavedView
from registry.errors import ArtifactError, RegistryError, RegistryUnavailable
from registry.sqlite.store import open_registry

NAME = "postgresql://modelgate:***@db:5432/modelgate"


async def test_a_saved_view_loads_back_equal_and_its_artifacts_are_verified(
    zoo_home: Path,
) -> None:
    registry = await open_registry(zoo_home)
    try:
        view = await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
    finally:
        await registry.close()
    saved = SavedView(zoo_home, NAME)
    await saved.save(view)
    assert SavedView(zoo_home, NAME).load() == view
    # another registry's view is never served
    assert SavedView(zoo_home, "postgresql://other@db/x").load() is None

    cache = CachedArtifacts(view, registry.artifacts)
    clf = next(v for mv in view.models for v in mv.versions if v.model == "clf")
    data = await cache.read_artifact("clf", clf.version)
    assert len(data) == clf.artifact_size
    with pytest.raises(RegistryError, match="not in the saved serving view"):
        await cache.read_artifact("clf", "9.9.9")
    with pytest.raises(RegistryUnavailable):
        await cache.generation()
    # a corrupted cache file is refused, never loaded
    path = registry.artifacts.path(clf.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ArtifactError):
        await cache.read_artifact("clf", clf.version)


def test_a_damaged_or_missing_file_is_no_view(tmp_path: Path) -> None:
    saved = SavedView(tmp_path, NAME)
    assert saved.load() is None
    (tmp_path / FILENAME).write_bytes(b'{"format": 1, "registry": "x"')
    assert saved.load() is None

"""The saved serving view: a round trip of a real registry view, the cache it reads, and the
background writer (the newest view handed over ends up on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.dataplane.shadow import ShadowMirror
from gateway.dataplane.snapshot import SnapshotHolder
from gateway.serving.publisher import VIEW_STATE_PREFIXES, Publisher
from gateway.serving.saved_view import FILENAME, CachedArtifacts, SavedView
from gateway.settings import Settings
from registry.errors import ArtifactError, RegistryError, RegistryUnavailable
from registry.models import Deployment, Route
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


def canary(weight: float) -> Deployment:
    return Deployment(model="clf", routes=(Route("1.0.0", 100 - weight), Route("1.1.0", weight)))


async def test_after_quick_changes_the_file_holds_the_latest_view(zoo_home: Path) -> None:
    saved = SavedView(zoo_home, NAME)
    registry = await open_registry(zoo_home)
    try:
        views = []
        for weight in (10.0, 20.0, 30.0, 40.0, 50.0):
            await registry.set_deployment(canary(weight))
            view = await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
            saved.schedule(view)  # handed over while the previous one may still be written
            views.append(view)
        await saved.settled()
    finally:
        await registry.close()
    assert len({view.generation for view in views}) == 5
    assert SavedView(zoo_home, NAME).load() == views[-1]
    assert SavedView(zoo_home, NAME).load() != views[-2]


async def test_a_publisher_saves_the_view_of_its_latest_refresh(zoo_home: Path) -> None:
    registry = await open_registry(zoo_home)
    saved = SavedView(zoo_home, NAME)
    settings = Settings.from_environ({}, home=str(zoo_home), monitoring=False)
    publisher = Publisher(registry, settings, SnapshotHolder(), ShadowMirror(), saved)
    try:
        await publisher.refresh()
        for weight in (10.0, 20.0, 30.0):
            await registry.set_deployment(canary(weight))
            await publisher.refresh()
        await publisher.settled()
        assert publisher.view is not None
        on_disk = SavedView(zoo_home, NAME).load()
        assert on_disk == publisher.view
        assert on_disk is not None
        (clf,) = [mv for mv in on_disk.models if mv.model.name == "clf"]
        assert clf.deployment.routes == canary(30.0).routes
    finally:
        await publisher.close()
        await registry.close()


async def test_a_failed_write_is_logged_and_the_next_view_written(
    zoo_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = await open_registry(zoo_home)
    try:
        first = await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
        await registry.set_deployment(canary(10.0))
        second = await registry.serving_view(state_prefix=VIEW_STATE_PREFIXES)
    finally:
        await registry.close()
    folder = tmp_path / "not-yet"
    saved = SavedView(folder, NAME)
    await saved.save(first)  # the folder does not exist: logged, nothing raised
    assert "cannot save the serving view" in caplog.text
    folder.mkdir()
    await saved.save(second)
    assert SavedView(folder, NAME).load() == second

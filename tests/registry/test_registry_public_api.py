from __future__ import annotations

import inspect

import registry
from registry.base import RegistryStore
from registry.sqlite.store import SqliteRegistry


def test_all_is_explicit_sorted_and_importable() -> None:
    assert registry.__all__ == sorted(registry.__all__)
    assert len(set(registry.__all__)) == len(registry.__all__)
    for name in registry.__all__:
        assert getattr(registry, name) is not None
    public = {n for n in dir(registry) if not n.startswith("_") and not _is_submodule(n)}
    assert public - {"annotations"} == set(registry.__all__)


def _is_submodule(name: str) -> bool:
    return type(getattr(registry, name)).__name__ == "module"


def test_sqlite_registry_implements_every_store_method() -> None:
    protocol_methods = {
        name
        for name, value in vars(RegistryStore).items()
        if callable(value) and not name.startswith("_")
    }
    assert protocol_methods >= {"register_version", "set_deployment", "get_state"}
    for name in protocol_methods:
        implementation = getattr(SqliteRegistry, name, None)
        # the change builders are plain functions returning a transaction body
        is_async = inspect.iscoroutinefunction(getattr(RegistryStore, name))
        assert callable(implementation), name
        assert inspect.iscoroutinefunction(implementation) == is_async, name
        assert _shape(implementation) == _shape(getattr(RegistryStore, name)), name


def _shape(function: object) -> list[tuple[str, object, object]]:
    """Parameter names, kinds and defaults: what callers of the Protocol rely on."""
    params = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in params]

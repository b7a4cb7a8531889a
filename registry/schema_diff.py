"""What changed between two versions' input schemas and outputs (pure: dicts in, text out).

A client or a monitor built against one version breaks on the next when a column is added,
removed, reordered or changes kind (number <-> string), when a categorical column's known
levels change, when the ONNX input tensors are regrouped, or when the task or the class
labels change. Such a version must be a new MAJOR version (``registry.semver``).

Numeric precision is not compared (``float32`` vs ``float64`` columns, ``FP32`` vs ``FP64``
tensors): the gateway casts numbers to whatever the model takes, so clients do not notice.
Levels are compared only when both schemas record them (``schema["levels"]``, written by the
converter from the fitted encoders); versions registered before levels were recorded are
compared on everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_SHOWN = 8  # names listed in one difference before "(+N more)"


def _names(items: Sequence[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:_SHOWN])
    return shown + (f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _levels_text(levels: Sequence[str]) -> str:
    shown = ", ".join(repr(v) for v in levels[:_SHOWN])
    more = f" (+{len(levels) - _SHOWN} more)" if len(levels) > _SHOWN else ""
    return "{" + shown + more + "}"


def _plural(word: str, count: int) -> str:
    return word if count == 1 else word + "s"


def _features(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, kind) per column in order; kind is categorical or numerical."""
    out = []
    for feature in schema.get("features") or []:
        kind = feature.get("kind")
        if kind not in ("categorical", "numerical"):
            kind = "categorical" if feature.get("dtype") == "string" else "numerical"
        out.append((str(feature.get("name")), kind))
    return out


def _column_changes(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[str]:
    old_names, new_names = [n for n, _ in old], [n for n, _ in new]
    changes = []
    added = [n for n in new_names if n not in set(old_names)]
    removed = [n for n in old_names if n not in set(new_names)]
    if added:
        changes.append(f"added {_plural('column', len(added))} {_names(added)}")
    if removed:
        changes.append(f"removed {_plural('column', len(removed))} {_names(removed)}")
    kept_old = [n for n in old_names if n in set(new_names)]
    kept_new = [n for n in new_names if n in set(old_names)]
    if kept_old != kept_new:
        changes.append(f"column order changed: {_names(kept_old)} -> {_names(kept_new)}")
    old_kind, new_kind = dict(old), dict(new)
    for name in kept_new:
        if old_kind[name] != new_kind[name]:
            changes.append(f"column {name} changed from {old_kind[name]} to {new_kind[name]}")
    return changes


def _level_changes(old: Mapping[str, Any], new: Mapping[str, Any], columns: list[str]) -> list[str]:
    old_levels = old.get("levels") or {}
    new_levels = new.get("levels") or {}
    changes = []
    for name in columns:
        before, after = old_levels.get(name), new_levels.get(name)
        if before is None or after is None:
            continue
        before_set, after_set = set(before), set(after)
        gained = sorted(after_set - before_set)
        lost = sorted(before_set - after_set)
        if gained:
            changes.append(f"{name}: new levels {_levels_text(gained)}")
        if lost:
            changes.append(f"{name}: levels no longer known {_levels_text(lost)}")
    return changes


def _layout(schema: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """Input tensors by name and the columns each carries (datatype width ignored)."""
    return [
        (str(spec.get("name")), tuple(str(c) for c in spec.get("features") or ()))
        for spec in schema.get("inputs") or []
    ]


def _layout_text(layout: list[tuple[str, tuple[str, ...]]]) -> str:
    if all(columns == (name,) for name, columns in layout):
        return f"one tensor per column ({len(layout)})"
    return _names([f"{name}[{len(columns)} columns]" for name, columns in layout])


def _output_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = []
    if old.get("task") != new.get("task"):
        changes.append(f"task changed {old.get('task')} -> {new.get('task')}")
    old_classes, new_classes = old.get("classes"), new.get("classes")
    if old.get("task") == new.get("task") and old_classes != new_classes:
        changes.append(f"classes changed {old_classes} -> {new_classes}")
    return changes


def schema_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every client-visible difference from ``old`` to ``new``; empty when compatible."""
    old_features, new_features = _features(old), _features(new)
    changes = _column_changes(old_features, new_features)
    old_kind = dict(old_features)
    shared_categorical = [
        name
        for name, kind in new_features
        if kind == "categorical" and old_kind.get(name) == "categorical"
    ]
    changes += _level_changes(old, new, shared_categorical)
    # a regrouping of the same columns into other tensors breaks tensor-level (OIP) clients;
    # when columns changed, the tensors changed with them and saying so again is noise
    if not changes and _layout(old) != _layout(new):
        changes.append(
            f"input tensors changed: {_layout_text(_layout(old))} -> {_layout_text(_layout(new))}"
        )
    return changes + _output_changes(old, new)

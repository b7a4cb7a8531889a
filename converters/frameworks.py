"""XGBoost and LightGBM models (their scikit-learn classes) through onnxmltools' converters.

skl2onnx converts a Pipeline step by step and needs a converter registered for every
class in it; onnxmltools provides them for XGBClassifier / XGBRegressor and LGBMClassifier
/ LGBMRegressor. They are registered with skl2onnx on first use, and only when such a
step is seen: importing ``converters`` needs none of xgboost, lightgbm or onnxmltools (the
``frameworks`` extra). Steps are recognised by their class's module, without importing it.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import sklearn

from converters.errors import ConversionError
from converters.estimator import final_step, iter_steps
from converters.framework_names import library_of, missing_extra

# class name -> library; other classes of those libraries (rankers, random forests,
# boosters) are refused by name rather than half-converted
SUPPORTED = {
    "XGBClassifier": "xgboost",
    "XGBRegressor": "xgboost",
    "LGBMClassifier": "lightgbm",
    "LGBMRegressor": "lightgbm",
}
_ALIAS_PREFIX = {"xgboost": "XGBoost", "lightgbm": "LightGbm"}
# classes already registered with skl2onnx (its registry is process-wide too)
_registered: set[type] = set()


def framework_steps(estimator: Any) -> list[tuple[str, Any, str]]:
    """(step path, step, library) of every XGBoost / LightGBM step."""
    found = []
    for path, step in iter_steps(estimator):
        library = library_of(step)
        if library is not None:
            found.append((path, step, library))
    return found


def _imports(what: str, names: list[str]) -> dict[str, ModuleType]:
    modules, missing = {}, []
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise missing_extra(what, missing)
    return modules


def _check_supported(steps: list[tuple[str, Any, str]]) -> None:
    for path, step, library in steps:
        name = type(step).__name__
        if SUPPORTED.get(name) != library:
            allowed = ", ".join(SUPPORTED)
            raise ConversionError(
                f"cannot convert step '{path}' ({name}): of xgboost and lightgbm only "
                f"{allowed} are supported"
            )


def _register(cls: type, library: str) -> None:
    from skl2onnx import update_registered_converter

    from converters.framework_graph import converter_for, shape_calculator_for

    alias = _ALIAS_PREFIX[library] + cls.__name__
    classifier = cls.__name__.endswith("Classifier")
    # declaring zipmap lets skl2onnx's own classifier parser honour zipmap=False (plain
    # label and probability tensors, as for scikit-learn classifiers)
    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]} if classifier else None
    update_registered_converter(
        cls,
        alias,
        shape_calculator_for(classifier),
        converter_for(library),
        options=options,
    )


def register_converters(estimator: Any) -> dict[str, str]:
    """Make skl2onnx able to convert every XGBoost / LightGBM step of ``estimator``.

    Returns the converter tool's version for the lineage (``{}`` without such a step);
    ``ExtraMissing`` when the extra is not installed, ConversionError for other classes.
    """
    steps = framework_steps(estimator)
    if not steps:
        return {}
    _check_supported(steps)
    libraries = sorted({library for _, _, library in steps})
    first = type(steps[0][1]).__name__
    modules = _imports(f"converting {first}", [*libraries, "onnxmltools"])
    for _, step, library in steps:
        cls = type(step)
        if cls not in _registered:
            _register(cls, library)
            _registered.add(cls)
    return {"onnxmltools_version": str(modules["onnxmltools"].__version__)}


def _version(library: str) -> str:
    module = sys.modules.get(library)
    return str(getattr(module, "__version__", "unknown"))


def library_versions(estimator: Any) -> dict[str, str]:
    """Versions of the training libraries the estimator is made of (scikit-learn first)."""
    versions = {"scikit-learn": sklearn.__version__}
    for _, _, library in framework_steps(estimator):
        versions[library] = _version(library)
    return versions


def framework_label(estimator: Any) -> str:
    """``xgboost==3.2.0`` when the final model is XGBoost / LightGBM, else scikit-learn's."""
    library = library_of(final_step(estimator)[1])
    if library is None:
        return f"scikit-learn=={sklearn.__version__}"
    return f"{library}=={_version(library)}"

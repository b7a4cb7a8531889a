from __future__ import annotations

import converters


def test_all_is_explicit_and_importable():
    assert len(set(converters.__all__)) == len(converters.__all__)
    for name in converters.__all__:
        assert getattr(converters, name) is not None, name
    public = {n for n in vars(converters) if not n.startswith("_")}
    assert set(converters.__all__) <= public


def test_error_tree():
    assert issubclass(converters.DataError, converters.ConversionError)
    assert issubclass(converters.EstimatorError, converters.ConversionError)
    assert issubclass(converters.ParityError, converters.ConversionError)
    error = converters.ParityError("parity check failed", {"passed": False})
    assert error.parity == {"passed": False}


def test_target_opset_loads_in_onnxruntime():
    import onnxruntime

    assert converters.TARGET_OPSET == 17 and converters.ML_OPSET == 3
    assert tuple(int(p) for p in onnxruntime.__version__.split(".")[:2]) >= (1, 18)

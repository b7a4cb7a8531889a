"""Values of one model input -> a validated ``(n_rows, width)`` feed (shared by the codecs).

``from_json`` takes the parsed JSON values of an input (nested or flat lists),
``from_values`` a flat list of scalars (/predict), ``from_buffer`` the raw bytes of a binary
tensor (a read-only view on an immutable body, no copy, when they are aligned and already
the model's dtype), ``cast_numbers`` an array numpy already built. All return an array of
the model input's dtype (float32 for FP32 inputs, str objects for BYTES) or raise
``InputError``:

* float inputs take JSON numbers, booleans (1/0) and numeric strings ("1.5", parsed as numpy
  does); values beyond float32's range are ``out_of_range``, other strings ``non_numeric``;
* integer and BOOL inputs take integers / booleans only (range-checked), else ``bad_dtype``;
* NaN (JSON ``null``) passes only when the model imputes (``allow_missing``), inf never
  (``non_finite``);
* BYTES inputs take strings only (binary: 4-byte little-endian length + UTF-8 bytes).

Fast path for float inputs: one ``np.array(values, dtype=float64)``, one ``min()``/``max()``
range/NaN check, one cast; no Python loop over values. The dtype is forced on purpose: a
dtype-less ``np.array`` turns a list holding one long string into a fixed-width unicode array
of ``n_values x max_len x 4`` bytes (a 100 kB body became an 800 MB allocation). Anything
unusual falls to a slow path that walks the values, names the row and feature of the first
bad one, and refuses it. ``where`` prefixes messages (``"input 'x'"`` or ``"instances"``).
"""

from __future__ import annotations

import reprlib
import struct
from typing import Any

import numpy as np

from gateway.dataplane.signature import InputSpec
from gateway.errors import InputError

# Request datatypes we can read (binary itemsize / JSON value kinds), little-endian.
REQUEST_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.uint8),  # read as bytes, validated 0/1
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
NUMPY_REFUSED = (ValueError, TypeError, OverflowError, MemoryError, RecursionError)
# a value fits a float model dtype when it rounds to a finite value of that dtype: its
# magnitude is below the largest value plus half an ulp (the rule of a C cast, of numpy's
# astype and of struct packing, which the one-pass OIP decoder uses)
_FLOAT_BOUND = {
    np.dtype(np.float32): float(np.finfo(np.float32).max) + 2.0**103,
    np.dtype(np.float64): float("inf"),
}
_U32 = struct.Struct("<I")


def _bounded_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 2, 5, 5, 3, 3
    r.maxstring = r.maxlong = r.maxother = 40
    return r


# Client values in messages: bounded size and depth (plain repr() of a 1000-deep list
# raises RecursionError; of a 10 MB string makes a 10 MB message).
short = _bounded_repr().repr


def _at(where: str, spec: InputSpec, k: int) -> str:
    return f"{where}, row {k // spec.width}, feature '{spec.feature(k % spec.width)}'"


def flatten(data: Any) -> list[Any]:
    """Leaves of nested lists in row-major order (iterative: no recursion limit)."""
    if type(data) is not list:
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def check_compatible(datatype: Any, spec: InputSpec, where: str) -> str:
    """The request datatype, refused if it cannot be cast to the model input's."""
    if type(datatype) is not str or datatype not in REQUEST_DTYPES:
        raise InputError(f"{where}: unsupported datatype {short(datatype)}", reason="bad_dtype")
    if spec.is_string or datatype == "BYTES":
        ok = spec.is_string and datatype == "BYTES"
    elif spec.dtype.kind == "f":
        ok = True
    elif spec.dtype.kind in "iu":
        ok = datatype[0] in "IUB"  # INT*, UINT*, BOOL
    else:
        ok = datatype == "BOOL"
    if not ok:
        raise InputError(
            f"{where}: datatype {datatype} cannot feed model input '{spec.name}' ({spec.datatype})",
            reason="bad_dtype",
        )
    return datatype


def from_json(
    data: Any, datatype: str | None, spec: InputSpec, n_rows: int, allow_missing: bool, where: str
) -> np.ndarray:
    """JSON values (nested or flat lists, only the count matters) -> feed of ``spec``."""
    if spec.is_string:
        return _strings(flatten(data), spec, n_rows, where)
    if spec.dtype.kind == "f":
        try:
            arr = np.array(data, dtype=np.float64)
        except NUMPY_REFUSED:
            arr = None
        if arr is not None:
            count = n_rows * spec.width
            if arr.size != count:
                raise InputError(
                    f"{where}: got {arr.size} values, expected {count} "
                    f"({n_rows} rows x {spec.width})",
                    reason="bad_shape",
                )
            return cast_numbers(arr.reshape(n_rows, spec.width), spec, allow_missing, where)
    return _slow_numbers(flatten(data), datatype, spec, n_rows, allow_missing, where)


def from_values(
    values: list[Any], spec: InputSpec, n_rows: int, allow_missing: bool, where: str
) -> np.ndarray:
    """A flat row-major list of scalars (/predict) -> feed of ``spec``.

    Unlike ``from_json`` a nested list is a bad value here, not more values.
    """
    if spec.is_string:
        return _strings(values, spec, n_rows, where)
    if spec.dtype.kind == "f":
        try:
            arr = np.array(values, dtype=np.float64)
        except NUMPY_REFUSED:
            arr = None
        if arr is not None and arr.ndim == 1 and arr.size == n_rows * spec.width:
            return cast_numbers(arr.reshape(n_rows, spec.width), spec, allow_missing, where)
    return _slow_numbers(values, None, spec, n_rows, allow_missing, where)


def from_buffer(
    buf: memoryview, datatype: str, spec: InputSpec, n_rows: int, allow_missing: bool, where: str
) -> np.ndarray:
    """Binary tensor bytes (binary tensor data extension) -> feed of ``spec``."""
    count = n_rows * spec.width
    if datatype == "BYTES":
        return _strings(_unpack_strings(buf, count, where), spec, n_rows, where)
    src = REQUEST_DTYPES[datatype]
    if len(buf) != count * src.itemsize:
        raise InputError(
            f"{where}: binary data is {len(buf)} bytes, {n_rows} rows x {spec.width} "
            f"{datatype} need {count * src.itemsize}",
            reason="bad_shape",
        )
    arr = np.frombuffer(buf, dtype=src).reshape(n_rows, spec.width)
    if datatype == "BOOL":
        if count and int(arr.max()) > 1:
            k = int(np.argmax(arr > 1))
            raise InputError(f"{_at(where, spec, k)}: BOOL byte is not 0 or 1", reason="bad_dtype")
        arr = arr.view(np.bool_)
    # zero copy when the body is immutable (bytes: nothing can change the feed under the
    # model) and the chunk is already the model's dtype, aligned for it: the feed is then a
    # read-only view on the body, which onnxruntime reads in place (it copies only inputs
    # that are not C-contiguous). Otherwise one copy that casts, aligns and byte-swaps.
    copy = not (buf.readonly and arr.flags.aligned and arr.dtype == spec.dtype)
    return cast_numbers(arr, spec, allow_missing, where, copy=copy)


def cast_numbers(
    arr: np.ndarray, spec: InputSpec, allow_missing: bool, where: str, *, copy: bool = False
) -> np.ndarray:
    """A numeric array of the right shape -> the model dtype, range and NaN checked."""
    target, kind = spec.dtype, arr.dtype.kind
    if target.kind == "f":
        if kind == "f" and arr.size:
            # two reductions, no temporary array; NaN makes both NaN, which compares False
            bound = _FLOAT_BOUND[target]
            if not (-bound < float(arr.min()) and float(arr.max()) < bound):
                _check_floats(arr, target, allow_missing, spec, where)
        return arr.astype(target, copy=copy)
    if target.kind == "b":
        if kind != "b":
            raise InputError(f"{where}: model input '{spec.name}' takes BOOL", reason="bad_dtype")
        return arr.astype(target, copy=copy)
    if kind == "f":
        raise InputError(
            f"{where}: model input '{spec.name}' is {spec.datatype}, got floating-point values",
            reason="bad_dtype",
        )
    if kind in "iu" and arr.size and not np.can_cast(arr.dtype, target):
        info = np.iinfo(target)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            k = int(np.argmax((arr < info.min) | (arr > info.max)))
            bad = arr.ravel()[k].item()
            raise InputError(
                f"{_at(where, spec, k)}: {bad} does not fit {spec.datatype}", reason="out_of_range"
            )
    return arr.astype(target, copy=copy)


def _check_floats(
    arr: np.ndarray, target: np.dtype, allow_missing: bool, spec: InputSpec, where: str
) -> None:
    flat = arr.ravel()
    inf = np.isinf(flat)
    if inf.any():
        k = int(np.argmax(inf))
        raise InputError(
            f"{_at(where, spec, k)}: {flat[k].item()} is not accepted", reason="non_finite"
        )
    over = np.abs(flat, dtype=np.float64) >= _FLOAT_BOUND[target]
    if over.any():
        k = int(np.argmax(over))
        raise InputError(
            f"{_at(where, spec, k)}: {flat[k].item()!r} does not fit {spec.datatype}",
            reason="out_of_range",
        )
    if not allow_missing:
        k = int(np.argmax(np.isnan(flat)))
        raise InputError(
            f"{_at(where, spec, k)}: missing value (NaN/null) not accepted, "
            "this model does not impute missing values",
            reason="non_finite",
        )


def _slow_numbers(
    values: list[Any],
    datatype: str | None,
    spec: InputSpec,
    n_rows: int,
    allow_missing: bool,
    where: str,
) -> np.ndarray:
    """Walk every value: finds the first bad one, or builds the array np.array could not."""
    count = n_rows * spec.width
    if len(values) != count:
        raise InputError(
            f"{where}: got {len(values)} values, expected {count} ({n_rows} rows x {spec.width})",
            reason="bad_shape",
        )
    target = spec.dtype.kind
    floats = target == "f"
    if floats:
        accepted: tuple[type, ...] = (float, int, bool)
    elif target == "b":
        accepted = (bool,)
    else:
        accepted = (int, bool) if datatype in (None, "BOOL") else (int,)
    for k, v in enumerate(values):
        t = type(v)
        if t in accepted or (floats and (v is None or (t is str and _is_number(v)))):
            continue
        if t is list:  # only /predict values reach here unflattened
            raise InputError(
                f"{_at(where, spec, k)}: expected a single value, got {short(v)}",
                reason="bad_shape",
            )
        if t is str or t is dict:
            raise InputError(
                f"{_at(where, spec, k)}: expected a number, got {short(v)}", reason="non_numeric"
            )
        if v is None:
            raise InputError(
                f"{_at(where, spec, k)}: missing value (null) in {spec.datatype} input",
                reason="non_finite",
            )
        what = spec.datatype if datatype is None else datatype
        raise InputError(
            f"{_at(where, spec, k)}: expected {what} values, got {short(v)}", reason="bad_dtype"
        )
    if floats:
        arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    elif spec.dtype.kind == "b":
        arr = np.array(values, dtype=np.bool_)
    else:  # integers out of int64's range: check in Python before numpy sees them
        info = np.iinfo(spec.dtype)
        for k, v in enumerate(values):
            if not info.min <= v <= info.max:
                raise InputError(
                    f"{_at(where, spec, k)}: {v} does not fit {spec.datatype}",
                    reason="out_of_range",
                )
        arr = np.array(values, dtype=spec.dtype)
    return cast_numbers(arr.reshape(n_rows, spec.width), spec, allow_missing, where)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _strings(values: list[Any], spec: InputSpec, n_rows: int, where: str) -> np.ndarray:
    count = n_rows * spec.width
    if len(values) != count:
        raise InputError(
            f"{where}: got {len(values)} strings, expected {count} ({n_rows} rows x {spec.width})",
            reason="bad_shape",
        )
    for k, v in enumerate(values):
        if type(v) is not str:
            raise InputError(
                f"{_at(where, spec, k)}: expected a string, got {short(v)}", reason="bad_dtype"
            )
    arr = np.empty(count, dtype=object)
    arr[:] = values
    return arr.reshape(n_rows, spec.width)


def _unpack_strings(buf: memoryview, count: int, where: str) -> list[str]:
    out: list[str] = []
    end, off = len(buf), 0
    for i in range(count):
        if off + 4 > end:
            raise InputError(
                f"{where}: BYTES binary data ends inside element {i} of {count}",
                reason="bad_framing",
            )
        (size,) = _U32.unpack_from(buf, off)
        off += 4
        if off + size > end:
            raise InputError(
                f"{where}: BYTES element {i} declares {size} bytes, only {end - off} remain",
                reason="bad_framing",
            )
        try:
            out.append(str(buf[off : off + size], "utf-8"))
        except UnicodeDecodeError:
            msg = f"{where}: BYTES element {i} is not valid UTF-8"
            raise InputError(msg, reason="bad_dtype") from None
        off += size
    if off != end:
        raise InputError(
            f"{where}: {end - off} bytes of BYTES data left after {count} elements",
            reason="bad_framing",
        )
    return out

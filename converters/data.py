"""Sample data: load csv / parquet / npy / npz into a DataFrame, split the label, fingerprint it.

The fingerprint hashes a canonical encoding of the values, not the file bytes, so the same
table stored as csv or as parquet fingerprints the same.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from converters.errors import DataError

FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    known = ", ".join(sorted(FORMATS))
    raise DataError(f"{path}: unknown data format (expected one of {known})")


def _numbered(array: np.ndarray, path: Path) -> pd.DataFrame:
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 2-D array (rows x features), got shape {array.shape}")
    return pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])


def _load_npz(path: Path) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as archive:
        names = list(archive.files)
        if "X" in names:
            key = "X"
        elif len(names) == 1:
            key = names[0]
        else:
            raise DataError(
                f"{path}: npz holds {names}; name the feature array 'X' (and labels 'y')"
            )
        frame = _numbered(archive[key], path)
        if "y" in names and key != "y":
            labels = archive["y"]
            if labels.shape != (len(frame),):
                raise DataError(f"{path}: 'y' has shape {labels.shape}, expected ({len(frame)},)")
            frame["y"] = labels
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a data file into a DataFrame (npy columns are named f0..fN-1)."""
    path = Path(path)
    fmt = _format_of(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(
                path, sep="\t" if fmt == "tsv" else ",", float_precision="round_trip"
            )
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "npy":
            frame = _numbered(np.load(path, allow_pickle=False), path)
        else:
            frame = _load_npz(path)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow/numpy raise many unrelated types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read as {fmt}: {reason[:200]}") from None
    if len(frame) == 0:
        raise DataError(f"{path}: the sample has no rows")
    return frame


def split_label(frame: pd.DataFrame, label: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
    """Split ``label`` off the features; DataError when the column is absent."""
    if label is None:
        return frame, None
    if label not in frame.columns:
        cols = ", ".join(map(str, frame.columns[:20]))
        raise DataError(f"label column {label!r} not in the sample (columns: {cols})")
    return frame.drop(columns=[label]), frame[label]


def load_sample(
    path: str | Path, label: str | None = None
) -> tuple[pd.DataFrame, pd.Series | None]:
    return split_label(read_table(path), label)


def is_numeric_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)


_NULL = struct.pack("<q", -1)


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over column names in order and every value, independent of the file format.

    Numbers (ints, floats, bools) are encoded as little-endian float64 with one canonical
    NaN; anything else as length-prefixed UTF-8 of ``str(value)``, a missing value as
    length -1.
    """
    digest = hashlib.sha256(b"modelgate-dataset-v1\0")
    digest.update(struct.pack("<qq", len(frame), frame.shape[1]))
    for name in frame.columns:
        encoded = str(name).encode()
        digest.update(b"C" + struct.pack("<q", len(encoded)) + encoded)
        column = frame[name]
        if is_numeric_column(column) and not isinstance(column.dtype, pd.CategoricalDtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan).copy()
            values[np.isnan(values)] = np.nan  # one bit pattern for every NaN
            values[values == 0.0] = 0.0  # -0.0 and 0.0 print the same in csv
            digest.update(b"N" + values.astype("<f8").tobytes())
            continue
        digest.update(b"S")
        for value in column.astype(object).tolist():
            if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
                digest.update(_NULL)
            else:
                text = str(value).encode()
                digest.update(struct.pack("<q", len(text)) + text)
    return digest.hexdigest()

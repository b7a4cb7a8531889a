from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from converters import DataError, dataset_fingerprint, load_sample, read_table


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "amount": rng.normal(size=50) * 1e3,  # full float64 precision
            "count": rng.integers(0, 9, 50),
            "flag": rng.random(50) < 0.5,
            "plan": rng.choice(["basic", "pro", "ünïcode, with comma"], 50),
            "label": rng.integers(0, 2, 50),
        }
    )


def test_csv_and_parquet_load_the_same_values(tmp_path, table):
    table.to_csv(tmp_path / "s.csv", index=False)
    table.to_parquet(tmp_path / "s.parquet")
    from_csv = read_table(tmp_path / "s.csv")
    from_parquet = read_table(tmp_path / "s.parquet")
    assert list(from_csv.columns) == list(table.columns)
    np.testing.assert_array_equal(from_csv["amount"].to_numpy(), table["amount"].to_numpy())
    assert from_csv["plan"].tolist() == from_parquet["plan"].tolist()


def test_fingerprint_is_independent_of_the_file_format(tmp_path, table):
    table.to_csv(tmp_path / "s.csv", index=False)
    table.to_parquet(tmp_path / "s.parquet")
    expected = dataset_fingerprint(table)
    assert dataset_fingerprint(read_table(tmp_path / "s.csv")) == expected
    assert dataset_fingerprint(read_table(tmp_path / "s.parquet")) == expected
    assert len(expected) == 64


def test_fingerprint_with_missing_values_across_formats(tmp_path):
    frame = pd.DataFrame({"x": [1.5, np.nan, 3.0], "c": ["a", None, "b"]})
    frame.to_csv(tmp_path / "m.csv", index=False)
    frame.to_parquet(tmp_path / "m.parquet")
    assert dataset_fingerprint(read_table(tmp_path / "m.csv")) == dataset_fingerprint(
        read_table(tmp_path / "m.parquet")
    )


def test_fingerprint_sees_values_names_and_order(table):
    base = dataset_fingerprint(table)
    changed = table.copy()
    changed.loc[7, "amount"] += 1e-9
    assert dataset_fingerprint(changed) != base
    assert dataset_fingerprint(table.rename(columns={"count": "n"})) != base
    assert dataset_fingerprint(table[list(reversed(table.columns))]) != base
    assert dataset_fingerprint(table.iloc[::-1]) != base
    # a string "1" is not the number 1
    assert dataset_fingerprint(pd.DataFrame({"a": ["1"]})) != dataset_fingerprint(
        pd.DataFrame({"a": [1]})
    )
    # int and float encodings of the same numbers agree (csv may read either)
    assert dataset_fingerprint(pd.DataFrame({"a": [1, 2]})) == dataset_fingerprint(
        pd.DataFrame({"a": [1.0, 2.0]})
    )


def test_npy_columns_are_numbered(tmp_path):
    array = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.save(tmp_path / "x.npy", array)
    frame = read_table(tmp_path / "x.npy")
    assert list(frame.columns) == ["f0", "f1", "f2"]
    np.testing.assert_array_equal(frame.to_numpy(), array)


def test_npz_with_features_and_labels(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((5, 2)), y=np.arange(5))
    features, labels = load_sample(tmp_path / "d.npz", label="y")
    assert list(features.columns) == ["f0", "f1"]
    assert labels.tolist() == [0, 1, 2, 3, 4]


def test_label_is_split_off(tmp_path, table):
    table.to_csv(tmp_path / "s.csv", index=False)
    features, labels = load_sample(tmp_path / "s.csv", label="label")
    assert "label" not in features.columns and labels.name == "label"
    assert load_sample(tmp_path / "s.csv")[1] is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("data.xlsx", b"whatever", "unknown data format"),
        ("bad.parquet", b"not parquet at all", "cannot read as parquet"),
        ("bad.npy", b"\x93NUMPY garbage", "cannot read as npy"),
        ("empty.csv", b"a,b\n", "no rows"),
    ],
)
def test_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_table(path)
    assert "\n" not in str(info.value)


def test_one_dimensional_npy_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(4))
    with pytest.raises(DataError, match="2-D"):
        read_table(tmp_path / "v.npy")


def test_missing_label_column_names_the_columns(tmp_path, table):
    table.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match="label column 'target' not in the sample.*amount"):
        load_sample(tmp_path / "s.csv", label="target")

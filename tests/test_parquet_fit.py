"""Fitting from a Parquet dataset read batch by batch (ParquetTable)."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from augment import TabularGAN, TabularVAE
from augment.tabular import BatchTable, ParquetTable


@pytest.fixture
def parts(tmp_path):
    """The wine table (a categorical column, a missing value) in 3 files."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    X["hue"] = pd.cut(X["hue"], 3, labels=["low", "mid", "high"]).astype(str)
    X.loc[5, "alcohol"] = np.nan
    table = X.assign(label=y)
    for i, rows in enumerate(np.array_split(np.arange(len(table)), 3)):
        table.iloc[rows].reset_index(drop=True).to_parquet(tmp_path / f"{i}.parquet")
    whole = pd.concat(
        [pd.read_parquet(tmp_path / f"{i}.parquet") for i in range(3)],
        ignore_index=True,
    )
    return tmp_path, whole


@pytest.mark.parametrize("cls", [TabularVAE, TabularGAN])
def test_same_model_as_the_table_in_memory(parts, cls):
    folder, whole = parts
    source = ParquetTable(folder / "*.parquet", target="label", batch_rows=50)
    assert len(source) == len(whole) and "label" not in source.columns
    streamed = cls(epochs=2, batch_size=60, random_state=0).fit(source)
    in_memory = cls(epochs=2, batch_size=60, random_state=0)
    in_memory.fit(whole.drop(columns="label"), whole["label"])
    pd.testing.assert_frame_equal(
        streamed.sample(50, random_state=1)[0], in_memory.sample(50, random_state=1)[0]
    )


def test_an_arrow_table_read_in_batches(parts):
    import pyarrow as pa

    folder, whole = parts
    arrow = pa.Table.from_pandas(whole, preserve_index=False)
    source = BatchTable.from_arrow(arrow, target="label", batch_rows=64)
    streamed = TabularVAE(epochs=2, random_state=0).fit(source)
    from_files = TabularVAE(epochs=2, random_state=0).fit(
        ParquetTable(folder, target="label")
    )
    pd.testing.assert_frame_equal(
        streamed.sample(20, random_state=1)[0], from_files.sample(20, random_state=1)[0]
    )


def test_bounded_sample_still_encodes_every_row(parts):
    folder, whole = parts
    # a value only in the last file, far from a 20-row sample
    last = pd.read_parquet(folder / "2.parquet")
    last.loc[len(last) - 1, "hue"] = "unique"
    last.to_parquet(folder / "2.parquet")
    gen = TabularVAE(epochs=1, random_state=0)
    gen._max_fit_rows = 20
    gen.fit(ParquetTable(folder, target="label", batch_rows=16))
    hue = gen.encoder_.columns_[list(whole.columns).index("hue")]
    assert "unique" in set(hue.categories) | set(hue.rare_values or [])
    assert gen.encoder_.columns_[0].has_missing  # alcohol has one missing value
    assert gen.sample(10, random_state=0)[0].shape == (10, whole.shape[1] - 1)


def test_continuous_target(parts):
    folder, _ = parts
    gen = TabularVAE(epochs=1, random_state=0)
    gen.fit(ParquetTable(folder, target="flavanoids", batch_rows=40))
    assert gen.target_type_ == "continuous"
    X, y = gen.sample(5, random_state=0)
    assert "flavanoids" not in X.columns and y.name == "flavanoids"


def test_bad_input(parts, tmp_path_factory):
    folder, whole = parts
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ParquetTable(folder / "nowhere.parquet")
    with pytest.raises(FileNotFoundError, match="no such Parquet"):
        ParquetTable(tmp_path_factory.mktemp("empty"))
    with pytest.raises(ValueError, match="target='nope' is not a column"):
        ParquetTable(folder, target="nope")
    with pytest.raises(ValueError, match="has a target column already"):
        TabularVAE().fit(ParquetTable(folder, target="label"), whole["label"])
    bad = whole.iloc[:10].assign(alcohol=lambda t: t["alcohol"].astype(str))
    bad.to_parquet(folder / "3.parquet")
    with pytest.raises(ValueError, match=r"3\.parquet.*column 'alcohol'"):
        ParquetTable(folder)
    whole.iloc[:10].drop(columns="ash").to_parquet(folder / "3.parquet")
    with pytest.raises(ValueError, match=r"3\.parquet.*lacks column 'ash'"):
        ParquetTable(folder)
    with pytest.raises(ValueError, match="needs the table in memory"):
        TabularVAE(dp_epsilon=1.0).fit(ParquetTable(folder / "0.parquet"))


def test_bounded_sample_in_the_same_order_in_every_process():
    """The values the sample misses are added in the order first seen, not in a
    set's order, which depends on the process's hash seed: ranks of a process
    group (each its own process) must build the very same sample."""
    script = (
        "import pandas as pd\n"
        "from augment.tabular.reservoir import fit_sample\n"
        "X = pd.DataFrame({'city': [f'c{i}' for i in range(60)], 'n': range(60)})\n"
        "print(fit_sample(X, max_rows=5, seed=0)['city'].tolist())\n"
    )
    orders = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(orders) == 1

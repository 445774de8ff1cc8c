"""augment.distributed on a local Ray cluster (2 CPU workers, gloo).

Ray starts slowly on 2 cores: the Ray tests are few and share one cluster.
They run in an environment with the [ray] extra (tox -e ray); without Ray
only the ImportError and the checks made before Ray is needed run.
"""

import importlib.util

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_wine

from augment import TabularVAE, distributed

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed")


def _wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    X["hue"] = pd.cut(X["hue"], 3, labels=["low", "mid", "high"])
    return X.assign(label=y)


@pytest.fixture(scope="module")
def cluster():
    import ray

    # more logical CPUs than cores: Ray Data's tasks run beside the 2 workers
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.skipif(HAS_RAY, reason="Ray is installed")
def test_without_ray_the_error_names_the_extra():
    with pytest.raises(ImportError, match=r"augment-learn\[ray\]"):
        distributed.fit(TabularVAE(), _wine(), num_workers=1)


@pytest.mark.parametrize("bad", [0, -1])
def test_num_workers_below_one(bad):
    with pytest.raises(ValueError, match="num_workers must be >= 1"):
        distributed.fit(TabularVAE(), _wine(), num_workers=bad)


def test_not_a_tabular_generator():
    with pytest.raises(TypeError, match="tabular generator"):
        distributed.fit(object(), _wine(), num_workers=1)


@needs_ray
def test_parquet_path_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        distributed.fit(TabularVAE(), tmp_path / "nowhere" / "*.parquet")


@needs_ray
def test_parquet_shards_that_disagree(tmp_path):
    table = _wine()
    table.iloc[:90].to_parquet(tmp_path / "a.parquet")
    table.iloc[90:].assign(alcohol=lambda t: t["alcohol"].astype(str)).to_parquet(
        tmp_path / "b.parquet"
    )
    with pytest.raises(ValueError, match=r"b\.parquet.*column 'alcohol'"):
        distributed.fit(TabularVAE(), tmp_path, target="label")


@needs_ray
def test_fit_from_parquet_on_two_workers(cluster, tmp_path):
    table = _wine()
    for i, part in enumerate(np.array_split(np.arange(len(table)), 3)):
        pq.write_table(pa.Table.from_pandas(table.iloc[part]), tmp_path / f"{i}.pq")
    gen = TabularVAE(epochs=150, batch_size=32, random_state=0)
    assert distributed.fit(gen, str(tmp_path / "*.pq"), target="label") is gen
    assert gen.classes_.tolist() == [0, 1, 2]
    assert gen.n_features_in_ == table.shape[1] - 1
    assert len(gen.history_) == 150
    X, y = gen.sample(300, y=2, random_state=0)
    assert list(X.columns) == list(table.columns[:-1])
    pd.testing.assert_series_equal(X.dtypes, table.dtypes.iloc[:-1])
    assert (y == 2).all()
    # the model learnt the table: the means of class 2 move towards the real ones
    real = table[table["label"] == 2]["flavanoids"].mean()
    assert abs(X["flavanoids"].mean() - real) < table["flavanoids"].std()

    # the parts of a distributed sample are the rows of sample_to
    parts = distributed.sample(
        gen, 9000, path=tmp_path / "parts", num_blocks=2, random_state=7
    )
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert len(pq.read_table(parts[0])) == 2 * 4096  # whole blocks
    whole = gen.sample_to(tmp_path / "one.parquet", 9000, random_state=7)
    got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(got, pd.read_parquet(whole))
    with pytest.raises(FileExistsError, match="holds parts"):
        distributed.sample(gen, 10, path=tmp_path / "parts", random_state=7)

"""Fit and sample on a Ray cluster (the ``[ray]`` extra).

:func:`fit` runs a generator's ordinary ``fit`` on Ray Train workers, one
rank of a ``torch.distributed`` process group each, every worker on its own
shard of the rows (see :mod:`augment.nn.parallel` for what data-parallel
training does), and returns the generator fitted, as a single process would
hold it. :func:`sample` writes synthetic rows as Parquet parts, one Ray task
each, every part a range of one reproducible stream: together the parts hold
the rows that :meth:`~augment.TabularVAE.sample_to` writes for the same
``random_state``.

Ray is imported only when these functions are called::

    pip install "augment-learn[ray]"
"""

import numbers
import os
import tempfile
from pathlib import Path

from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .base import BaseGenerator
from .tabular.files import parquet_files

_MODEL = "model.augment"


def _ray():
    try:
        import ray
        import ray.data
        import ray.train.torch
    except ImportError as exc:
        raise ImportError(
            "augment.distributed needs Ray (Ray Train and Ray Data): install "
            "the [ray] extra, pip install 'augment-learn[ray]'."
        ) from exc
    return ray


def _check_workers(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 1; got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}.")
    return int(value)


def _check_generator(estimator):
    if not isinstance(estimator, BaseGenerator) or not hasattr(estimator, "sample_to"):
        raise TypeError(
            f"estimator must be a tabular generator of augment-learn (such as "
            f"TabularVAE()); got {type(estimator).__name__}."
        )


def _dataset(data):
    """``data`` as a Ray Dataset: a DataFrame, Parquet path(s) or a Dataset."""
    import pandas as pd

    ray = _ray()
    if isinstance(data, ray.data.Dataset):
        return data
    if isinstance(data, pd.DataFrame):
        return ray.data.from_pandas(data)
    if isinstance(data, (str, os.PathLike)):
        # one read task per file: Ray 2.60's read_parquet lists files from
        # several threads, which can fail on an import race inside fsspec
        files = [{"path": str(f)} for f in parquet_files(data)]
        dataset = ray.data.from_items(files, override_num_blocks=len(files))
        return dataset.map_batches(_read_files, batch_size=1, batch_format="pyarrow")
    raise TypeError(
        "data must be a DataFrame, a Parquet file, folder or glob pattern, or a "
        f"ray.data.Dataset; got {type(data).__name__}."
    )


def _read_files(batch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(p) for p in batch["path"].to_pylist()])


def fit(
    estimator,
    data,
    *,
    target=None,
    num_workers=2,
    use_gpu=False,
    storage_path=None,
):
    """Fit a tabular generator on Ray Train workers, data-parallel.

    Every worker is one rank of a ``torch.distributed`` process group (gloo
    on CPUs, NCCL on GPUs) and calls the generator's own ``fit`` on its shard
    of ``data``: the encoder and rules are fitted once on a bounded sample of
    all shards, every optimiser step averages the gradients of all workers,
    and rank 0's model comes back.

    Parameters
    ----------
    estimator : TabularGenerator
        An (unfitted or fitted) tabular generator, such as
        ``TabularVAE(random_state=0)``; it is fitted in place. Its
        ``batch_size`` is per worker, and an epoch is one pass over all rows.
    data : DataFrame, str, path-like or ray.data.Dataset
        The training table: a DataFrame, a Parquet file, a folder of Parquet
        files or a glob pattern (the files must agree on their columns and
        types), or a Ray Dataset.
    target : str or None, default=None
        The column of ``data`` that is ``y`` (class labels or a continuous
        target); None fits the table unlabelled.
    num_workers : int, default=2
        Ray Train workers (ranks), >= 1.
    use_gpu : bool, default=False
        One GPU per worker (the generator then trains on it).
    storage_path : str or None, default=None
        Where Ray Train keeps the run and the fitted model (for a cluster of
        several machines, storage every node reaches, such as
        ``"s3://bucket/runs"``); None uses a temporary folder, which suits a
        cluster on one machine.

    Returns
    -------
    estimator : TabularGenerator
        The generator, fitted.
    """
    _check_generator(estimator)
    num_workers = _check_workers(num_workers, "num_workers")
    _ray()
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from .io import load

    dataset = _dataset(data)
    columns = dataset.schema().names
    if target is not None and target not in columns:
        raise ValueError(
            f"target={target!r} is not a column of data; the columns are "
            f"{columns[:20]}."
        )
    config = {"estimator": clone(estimator), "target": target, "use_gpu": use_gpu}
    with tempfile.TemporaryDirectory(prefix="augment-ray-") as scratch:
        trainer = TorchTrainer(
            _fit_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
            run_config=RunConfig(
                storage_path=storage_path or scratch, name=type(estimator).__name__
            ),
            datasets={"train": dataset},
        )
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            fitted = load(Path(folder) / _MODEL, device=estimator.device)
    params = estimator.get_params(deep=False)
    for name in [k for k in vars(estimator) if k not in params]:
        delattr(estimator, name)  # a previous fit's state
    vars(estimator).update({k: v for k, v in vars(fitted).items() if k not in params})
    return estimator


def _fit_worker(config):
    """One Ray Train worker: fit on this worker's shard; rank 0 reports the
    model file as the run's checkpoint."""
    import pyarrow as pa
    import ray.train
    import ray.train.torch

    from .tabular.files import BatchTable

    shard = ray.train.get_dataset_shard("train")
    batches = shard.iter_batches(batch_format="pyarrow", batch_size=65_536)
    # the shard stays columnar (Arrow); the generator reads it batch by batch
    table = BatchTable.from_arrow(
        pa.concat_tables(list(batches)), target=config["target"]
    )
    generator = config["estimator"]
    if config["use_gpu"]:
        generator.set_params(device=str(ray.train.torch.get_device()))
    generator.fit(table)
    with tempfile.TemporaryDirectory() as folder:
        generator.save(Path(folder) / _MODEL)  # rank 0 writes, the others wait
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"epochs": len(generator.history_)}, checkpoint=checkpoint)


def sample(
    estimator,
    n_samples,
    *,
    path,
    num_blocks=None,
    y=None,
    conditions=None,
    random_state=None,
    chunk_size=100_000,
    use_gpu=False,
):
    """Write synthetic rows to Parquet parts, one Ray task per part.

    The rows are those of one stream, cut into ranges: part ``i`` holds rows
    ``start_i`` to ``start_{i+1} - 1``, each made from its own reproducible
    blocks, so that the parts read in order are the file that
    ``estimator.sample_to(file, n_samples, random_state=random_state)``
    writes, whatever ``num_blocks``.

    Parameters
    ----------
    estimator : TabularGenerator
        A fitted tabular generator.
    n_samples : int
        Rows in all, >= 0.
    path : str or path-like
        A folder (made if missing, its parent must exist) for the parts
        ``part-00000.parquet``, ``part-00001.parquet``, ...; it must hold no
        parts already.
    num_blocks : int or None, default=None
        Parts (tasks), >= 1; each holds a whole number of the model's blocks
        of rows (4096), so fewer parts are written when ``n_samples`` is
        small. None: one per CPU of the Ray cluster.
    y, conditions : default=None
        As in :meth:`~augment.TabularVAE.sample_to` (a label, one per row, or
        ``{label: n_rows}``; ``{column: value}``).
    random_state : int or None, default=None
        The stream; None draws the generator's next unseeded stream.
    chunk_size : int, default=100_000
        Rows a task generates and writes at a time (a Parquet row group).
    use_gpu : bool, default=False
        One GPU per task.

    Returns
    -------
    parts : list of pathlib.Path
        The files written, in order.
    """
    _check_generator(estimator)
    check_is_fitted(estimator)
    plan = estimator._sample_plan(n_samples, y, conditions, chunk_size, random_state)
    ray = _ray()
    if num_blocks is None:
        num_blocks = int(ray.cluster_resources().get("CPU", 1))
    num_blocks = _check_workers(num_blocks, "num_blocks")
    folder = Path(path)
    if not folder.parent.is_dir():
        raise FileNotFoundError(
            f"path {str(folder)!r}: the folder {str(folder.parent)!r} does not exist."
        )
    folder.mkdir(exist_ok=True)
    if any(folder.glob("part-*.parquet")):
        raise FileExistsError(
            f"path {str(folder)!r} holds parts already; write to an empty folder."
        )
    n, block = plan.n_samples, estimator._block_size
    blocks_per_part = max(_ceil_div(_ceil_div(n, block), num_blocks), 1)
    bounds = [*range(0, n, blocks_per_part * block), n] if n else [0, 0]
    task = ray.remote(num_gpus=1 if use_gpu else 0)(_write_part)
    model = ray.put(estimator)
    pending = [
        task.remote(model, plan, str(folder / f"part-{i:05d}.parquet"), a, b, use_gpu)
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
    return [Path(p) for p in ray.get(pending)]


def _ceil_div(a, b):
    return -(-a // b)


def _write_part(estimator, plan, path, start, stop, use_gpu):
    """One task: rows ``start`` to ``stop - 1`` of the plan's stream."""
    if use_gpu:
        estimator.set_params(device="cuda")
    return str(estimator._write_rows(path, plan, start, stop))

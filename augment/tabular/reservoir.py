"""The bounded sample of a table that the rules and the encoder are fitted on
when the rows are not in one DataFrame: a Parquet dataset read batch by batch
(:class:`~augment.tabular.files.ParquetTable`), or the ranks of a process
group (:mod:`augment.nn.parallel`), each with its own rows.

The sample is uniform over all rows and at most ``max_rows`` long (each part
contributes in proportion to its rows). So that the encoder fitted on it can
encode every row, values the sample misses are added to it, one row each (a
copy of a sampled row with that value): every value of a discrete column (up
to :data:`MAX_VALUES` of them: past that many, values the encoder has not
seen go to its slot for rare values) and a missing value in every column that
has one somewhere. Categorical columns take the union of the categories.
"""

import numpy as np
import pandas as pd

from ..nn import parallel

#: distinct values of a discrete column recorded, at most
MAX_VALUES = 10_000


def fit_sample(table, max_rows, seed):
    """The sample of ``table`` (a DataFrame or a ``ParquetTable``, this
    process's rows), the same DataFrame on every rank of a process group."""
    n_rows = len(table)
    n_total = parallel.total(n_rows)
    share = n_rows if n_total <= max_rows else -(-max_rows * n_rows // n_total)
    rng = np.random.default_rng([seed, parallel.world()[0]])
    rows = np.sort(rng.choice(n_rows, size=min(share, n_rows), replace=False))
    batches = table.batches() if hasattr(table, "batches") else [table]
    summary = _Summary()
    start = 0
    for batch in batches:
        stop = start + len(batch)
        lo, hi = np.searchsorted(rows, [start, stop])
        summary.add(batch, rows[lo:hi] - start)
        start = stop
    return _merge(parallel.gather(summary.done()))


class _Summary:
    """What one part's rows tell the sample: sampled rows, values, missing."""

    def __init__(self):
        self.columns = self.dtypes = None
        self.samples, self.values, self.missing = [], {}, set()

    def add(self, batch, rows):
        if self.columns is None:
            self.columns = list(batch.columns)
            self.dtypes = [str(d) for d in batch.dtypes]
            # values in the order first seen (dicts, not sets): a set of strings
            # iterates in an order that depends on each process's hash seed, so
            # ranks would add the missed values in different orders
            self.values = {
                c: {}
                for c in batch.columns
                if not pd.api.types.is_numeric_dtype(batch[c])
            }
        self.samples.append(batch.iloc[rows])
        for column, seen in self.values.items():
            if len(seen) < MAX_VALUES:
                seen.update(
                    dict.fromkeys(batch[column].dropna().unique().tolist()[:MAX_VALUES])
                )
        self.missing.update(c for c in batch.columns if batch[c].isna().any())

    def done(self):
        return {
            "columns": self.columns,
            "dtypes": self.dtypes,
            "values": self.values,
            "missing": self.missing,
            "sample": _concat(self.samples),
        }


def _concat(frames):
    """Frames one after the other; categorical columns take the union of
    their categories (instead of turning into objects)."""
    frames = [f for f in frames if f is not None]
    for column in frames[0].columns:
        dtypes = [f[column].dtype for f in frames]
        if isinstance(dtypes[0], pd.CategoricalDtype) and len(frames) > 1:
            categories = pd.api.types.union_categoricals(
                [f[column] for f in frames], ignore_order=True
            ).categories
            dtype = pd.CategoricalDtype(categories, dtypes[0].ordered)
            frames = [f.assign(**{column: f[column].astype(dtype)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def _merge(parts):
    first = parts[0]
    for rank, part in enumerate(parts[1:], start=1):
        if part["columns"] != first["columns"]:
            raise ValueError(
                f"The ranks' tables disagree on columns: rank 0 has "
                f"{first['columns']}, rank {rank} has {part['columns']}."
            )
        for column, a, b in zip(
            first["columns"], first["dtypes"], part["dtypes"], strict=True
        ):
            if a != b:
                raise ValueError(
                    f"The ranks' tables disagree on the dtype of column "
                    f"{column!r}: {a} on rank 0, {b} on rank {rank}."
                )
    sample = _concat([part["sample"] for part in parts])
    extra = []
    for column in first["values"]:
        seen = set(sample[column].dropna().unique().tolist())
        for part in parts:
            for value in part["values"][column]:
                if value not in seen and len(seen) < MAX_VALUES:
                    seen.add(value)
                    extra.append(_with_value(sample, column, value))
    missing = set().union(*(part["missing"] for part in parts))
    for column in first["columns"]:
        if column in missing and not sample[column].isna().any():
            extra.append(_with_value(sample, column, None))
    if extra:
        sample = _concat([sample, *extra])
    return sample


def _with_value(sample, column, value):
    row = sample.iloc[:1].copy()
    dtype = sample[column].dtype
    if isinstance(dtype, pd.CategoricalDtype) and value is not None:
        if value not in dtype.categories:
            dtype = pd.CategoricalDtype([*dtype.categories, value], dtype.ordered)
    row[column] = pd.Series([value], dtype=dtype, index=row.index)
    return row

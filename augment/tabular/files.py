"""Tables in and out of CSV and Parquet files, chosen by extension.

Parquet (through pyarrow) keeps the dtypes of a table (categories with their
categories, nullable integers and booleans, strings, datetimes with their
time zone); CSV keeps the values only.
"""

import copy
import os
import tempfile
from pathlib import Path

import pandas as pd

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path, what="path"):
    """``"csv"`` or ``"parquet"`` from the file's extension (``.csv``,
    ``.parquet`` or ``.pq``)."""
    path = Path(path)
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise ValueError(
            f"{what} {str(path)!r}: unknown file type {path.suffix or '(none)'!r}; "
            "use .csv or .parquet."
        )
    return found


def read_table(path, what="file"):
    """Read a CSV or Parquet file into a DataFrame."""
    kind = table_format(path, what)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r}: no such file.")
    if kind == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def check_output(path, what="output"):
    """Fail early for an output file whose folder does not exist or whose
    type is unknown; return its format."""
    kind = table_format(path, what)
    folder = Path(path).parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{what} {str(path)!r}: the folder {str(folder)!r} does not exist."
        )
    return kind


class TableWriter:
    """Writes a table chunk by chunk, to a temporary file renamed into place
    by :meth:`close` (a failed run leaves no partial file behind).

    Every Parquet chunk takes the first chunk's schema, so that a column that
    happens to be all missing in one chunk keeps its type.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.kind = check_output(path)
        handle, self.temporary = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part"
        )
        os.close(handle)
        self.writer, self.schema, self.rows = None, None, 0

    def write(self, frame):
        if self.kind == "csv":
            frame.to_csv(
                self.temporary, mode="a", header=self.writer is None, index=False
            )
            self.writer = "csv"
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self.schema is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                self.schema = table.schema
                self.writer = pq.ParquetWriter(self.temporary, self.schema)
            else:
                table = pa.Table.from_pandas(
                    frame, schema=self.schema, preserve_index=False
                )
            self.writer.write_table(table)
        self.rows += len(frame)

    def close(self):
        if self.kind == "parquet" and self.writer is not None:
            self.writer.close()
        os.replace(self.temporary, self.path)
        return self.path

    def abort(self):
        if self.kind == "parquet" and self.writer is not None:
            self.writer.close()
            self.writer = None
        if os.path.exists(self.temporary):
            os.unlink(self.temporary)


def parquet_files(path, what="data"):
    """The Parquet files of ``path``: a file, a folder (its ``*.parquet`` and
    ``*.pq`` files, sorted), a glob pattern (``"data/part-*.parquet"``) or a
    list of files,
    checked to exist and to agree on their columns and types.

    Raises
    ------
    FileNotFoundError
        Nothing matches ``path``.
    ValueError
        A file's columns or a column's type differ from the first file's
        (the error names both files and the column).
    """
    import glob

    if isinstance(path, (list, tuple)):
        files = [Path(p) for p in path]
        for file in files:
            if not file.is_file():
                raise FileNotFoundError(f"{what} {str(file)!r}: no such file.")
        if not files:
            raise FileNotFoundError(f"{what}: an empty list of files.")
        check_schemas(files)
        return files
    text = os.fspath(path)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True))
    elif Path(text).is_dir():
        files = sorted(
            p for p in Path(text).iterdir() if p.suffix.lower() in (".parquet", ".pq")
        )
    else:
        files = [Path(text)] if Path(text).is_file() else []
    files = [f for f in files if f.is_file()]
    if not files:
        raise FileNotFoundError(f"{what} {text!r}: no such Parquet file or files.")
    check_schemas(files)
    return files


def check_schemas(files):
    """Fail when the Parquet ``files`` disagree on their columns or types."""
    import pyarrow.parquet as pq

    first = pq.read_schema(files[0])
    for file in files[1:]:
        schema = pq.read_schema(file)
        if schema.names != first.names:
            missing = [n for n in first.names if n not in schema.names]
            extra = [n for n in schema.names if n not in first.names]
            detail = (
                f"it lacks column {missing[0]!r}"
                if missing
                else f"it has the extra column {extra[0]!r}"
                if extra
                else "its columns are in another order"
            )
            raise ValueError(
                f"Parquet file {str(file)!r} does not have the columns of "
                f"{str(files[0])!r}: {detail}."
            )
        for field in first:
            other = schema.field(field.name)
            if not other.type.equals(field.type) and not _compatible(field, other):
                raise ValueError(
                    f"Parquet file {str(file)!r}: column {field.name!r} is "
                    f"{other.type}, but {field.type} in {str(files[0])!r}."
                )


def _compatible(a, b):
    """Dictionary-encoded (categorical) columns whose values agree in type
    (the width of their indices may differ from file to file)."""
    import pyarrow as pa

    a, b = a.type, b.type
    return (
        pa.types.is_dictionary(a)
        and pa.types.is_dictionary(b)
        and a.value_type.equals(b.value_type)
    )


class BatchTable:
    """Rows a tabular generator fits on batch by batch, never as one
    DataFrame: a :class:`ParquetTable`, or an Arrow table
    (:meth:`from_arrow`, a Ray worker's shard)."""

    target, batch_rows, _extra = None, 65_536, {}

    def __len__(self):
        return self.n_rows

    def batches(self):
        """The rows, batch by batch, as DataFrames (pyarrow's conversion: the
        dtypes :func:`pandas.read_parquet` gives)."""
        start = 0
        for batch in self._record_batches():
            frame = batch.to_pandas()
            stop = start + len(frame)
            for name, values in self._extra.items():
                frame[name] = values[start:stop]
            start = stop
            yield frame

    def assign(self, **columns):
        """The same table with extra columns (arrays of one value per row)."""
        other = copy.copy(self)
        other._extra = {**self._extra, **columns}
        return other

    @staticmethod
    def from_arrow(table, *, target=None, batch_rows=65_536):
        """A ``pyarrow.Table`` (held as it is, columnar) read in batches."""
        return _ArrowTable(table, target, batch_rows)

    def _columns(self, names):
        if self.target is not None and self.target not in names:
            raise ValueError(
                f"target={self.target!r} is not a column of {self!r}; the "
                f"columns are {names[:20]}."
            )
        if self.batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1; got {self.batch_rows}.")
        # a DataFrame's index, as pandas writes it, is not a column
        return [
            n for n in names if n != self.target and not n.startswith("__index_level_")
        ]


class _ArrowTable(BatchTable):
    def __init__(self, table, target, batch_rows):
        self.table, self.target, self.batch_rows = table, target, int(batch_rows)
        self.columns = self._columns(table.schema.names)
        self.n_rows = table.num_rows

    def __repr__(self):
        return f"BatchTable.from_arrow(<{self.n_rows} rows>, target={self.target!r})"

    def _record_batches(self):
        return self.table.select(self.columns).to_batches(self.batch_rows)

    def read_target(self):
        return self.table.select([self.target]).to_pandas()[self.target]


class ParquetTable(BatchTable):
    """A Parquet dataset to fit a tabular generator on, read batch by batch.

    ``gen.fit(ParquetTable("flights/*.parquet", target="carrier"))`` never
    holds the table as a DataFrame: the rules and the encoder are fitted on a
    bounded sample of its rows (:mod:`augment.tabular.reservoir`, one pass),
    then every batch is encoded into the model-space rows the model trains on
    (a second pass), so that memory holds those rows and one batch.

    Parameters
    ----------
    path : str, path-like or list of them
        A Parquet file, a folder of them (``*.parquet``, ``*.pq``), a glob
        pattern or a list of files; the files must agree on their columns and
        types.
    target : str or None, default=None
        The column that is ``y`` (read alone, as one column); None for none.
    batch_rows : int, default=65_536
        Rows read and encoded at a time.
    """

    def __init__(self, path, *, target=None, batch_rows=65_536):
        import pyarrow.parquet as pq

        self.files = parquet_files(path)
        self.path, self.target, self.batch_rows = path, target, int(batch_rows)
        self.columns = self._columns(pq.read_schema(self.files[0]).names)
        self.n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def __repr__(self):
        return f"ParquetTable({str(self.path)!r}, target={self.target!r})"

    def _record_batches(self):
        import pyarrow.parquet as pq

        for file in self.files:
            reader = pq.ParquetFile(file)
            yield from reader.iter_batches(self.batch_rows, columns=self.columns)

    def read_target(self):
        """The target column, whole (a Series)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = [pq.read_table(f, columns=[self.target]) for f in self.files]
        return pa.concat_tables(parts).to_pandas()[self.target]

"""TabularGenerator: the data hooks of BaseGenerator for tables.

Tables come in as DataFrames (any mix of dtypes) or as arrays and lists; the
:class:`TableEncoder` maps them to model space and back. A tabular model
subclasses :class:`TabularGenerator` and implements only ``_train`` and
``_generate``, given :meth:`TabularGenerator._layout` for the column spans.
"""

import numpy as np
import pandas as pd
from sklearn.utils import check_array

from ..base import BaseGenerator
from .encoder import TableEncoder, check_table
from .layout import SpanLayout

_TARGET = "__augment_target__"  # the column a continuous target joins the table as


class TabularGenerator(BaseGenerator):
    """Base class of the tabular generators. Not for direct use."""

    def _check_X(self, X):
        if isinstance(X, pd.DataFrame):
            table = check_table(X, "X")
            if len(table) < 2:
                raise ValueError(
                    f"X has 1 sample; at least 2 rows are needed (shape {X.shape})."
                )
            return table.reset_index(drop=True), _Format("dataframe")
        array = check_array(
            X,
            dtype=None,
            ensure_all_finite="allow-nan",
            ensure_min_samples=2,
            input_name="X",
        )
        if array.dtype.kind not in "biufO":
            raise TypeError(
                f"X has dtype {array.dtype}; numbers or strings are supported."
            )
        kind = "list" if isinstance(X, list) else "array"
        return check_table(pd.DataFrame(array), "X"), _Format(kind, array.dtype)

    def _fit_encoding(self, table, y_info):
        self.n_features_in_ = table.shape[1]
        names = list(table.columns)
        if self._input_format.kind == "dataframe" and all(
            isinstance(c, str) for c in names
        ):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if y_info.kind == "continuous":
            table = table.assign(**{_TARGET: y_info.values})
        self.encoder_ = TableEncoder(random_state=self._seed).fit(table)
        return self.encoder_.transform(table)

    def _layout(self):
        """The encoder's spans as a torch module (moves with the model)."""
        return SpanLayout(self.encoder_.spans_)

    def _decode(self, rows, seed):
        table = self.encoder_.inverse_transform(rows, random_state=seed)
        if self.target_type_ == "continuous":
            return table.drop(columns=_TARGET), table[_TARGET].to_numpy()
        return table, None

    def _concat(self, table, synthetic):
        return pd.concat([table, synthetic], ignore_index=True)


class _Format:
    """How the caller passed a table, to give results back the same way."""

    def __init__(self, kind, dtype=None):
        self.kind, self.dtype = kind, dtype

    def restore(self, table):
        if self.kind == "dataframe":
            return table
        array = table.to_numpy(dtype=self.dtype)
        return array.tolist() if self.kind == "list" else array

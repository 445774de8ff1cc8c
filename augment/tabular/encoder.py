"""TableEncoder: a pandas DataFrame <-> the numeric model space, reversibly.

Each column becomes a run of model-space columns ("spans"):

* numeric, integer and datetime columns: mode-specific normalisation. Values
  that carry a large share of the rows (point masses: the zeros of a debt
  column, the round numbers people answer with, the few values of a count;
  at least ``point_share`` of the rows and ten of them, the ``max_points``
  most frequent) get a slot of their own: their scalar is 0 and they decode
  to exactly that value. A variational Gaussian mixture is fitted to the
  other values; such a value becomes the one-hot of its most likely mode plus
  a scalar in [-1, 1], its offset from that mode's mean in units of four
  standard deviations (more for a mode that holds outliers, so that they
  round-trip). Decoding clips to the training range and rounds to the
  training precision (integers stay integers, dates stay whole days; single
  precision values stay single precision ones). A column whose values repeat
  (nine in ten values seen more than once: amounts heaped on round numbers)
  decodes onto its training values held by more than one row, by quantile,
  each about as often as in training.
* categorical columns (object, string, category, bool): a one-hot over the
  ``max_categories`` most frequent values. The rarer values of a very wide
  column (an id, a postcode) share one "rare" slot, decoded by drawing from
  their training frequencies: the width stays bounded and only values seen in
  training come out.
* missing values: a numeric column that had any gets a two-wide
  present/missing span; a categorical one gets a slot of its own. Both are
  learnt like any other value and so reproduced at their training rate.
"""

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._validation import record_feature_names
from .mixture import fit_mixtures, merge_overlapping_modes, mode_log_likelihood

_RARE = object()  # the slot shared by values outside the kept categories
_MIN_POINT_ROWS = 10  # fewest rows a point mass holds
_SEEN_SHARE = 0.9  # share of a column's values that repeat for it to snap to them
_MAX_SEEN = 10_000  # most distinct values a column snaps to
_SINGLE_SLACK = 4  # double steps a stored single precision value may be off by
_SECONDS_PER = {"day": 86400.0, "hour": 3600.0, "minute": 60.0, "second": 1.0}
_CONSTANT_SPREAD = 1e-9  # relative spread under which a column is one value


@dataclass
class Span:
    """A run of model-space columns that encodes one part of a table column.

    ``role`` is ``"scalar"`` (one continuous value in [-1, 1]) or one of the
    one-hot roles ``"mode"``, ``"missing"`` and ``"category"``.
    """

    column: str
    role: str
    start: int
    width: int

    @property
    def stop(self):
        return self.start + self.width


@dataclass
class ColumnSpec:
    """What the encoder learnt about one column of the training table."""

    name: object
    dtype: object
    kind: str  # "numeric", "datetime" or "categorical"
    has_missing: bool = False
    # numeric and datetime
    means: np.ndarray = None
    stds: np.ndarray = None
    weights: np.ndarray = None
    reach: np.ndarray = None  # scale of the within-mode scalar, >= 4 stds
    low: float = None
    high: float = None
    step: float = None  # rounding step in column units (1 for integers), or None
    # values stored in single precision: decoded values are rounded to
    # ``step`` and then to the nearest float32, as the training values are
    single: bool = False
    # a column whose values repeat (heaped on round numbers: loan amounts in
    # hundreds, incomes in tens): its distinct training values, sorted, and
    # the share of rows up to each; decoding snaps to them by quantile
    seen: np.ndarray = None
    seen_cdf: np.ndarray = None
    points: np.ndarray = None  # point masses, sorted: the first mode slots
    # a monotone piecewise-linear map applied before the modes (values at
    # ``warp_x`` become ``warp_u``), or None: under differential privacy, the
    # noisy cumulative histogram
    warp_x: np.ndarray = None
    warp_u: np.ndarray = None
    # one such map per class, ``(n_classes, len(warp_x))``, or None: under
    # differential privacy with class labels, the noisy cumulative histogram
    # within every class; rows are encoded and decoded by their own class's
    class_warp_u: np.ndarray = None
    tz: object = None
    # categorical
    categories: np.ndarray = None  # kept values, most frequent first
    rare_values: np.ndarray = None
    rare_probs: np.ndarray = None
    spans: list = field(default_factory=list)

    @property
    def slots(self):
        """Decoded value of each slot of a categorical column's one-hot."""
        extra = ([_RARE] if self.rare_values is not None else []) + (
            [np.nan] if self.has_missing else []
        )
        return np.array(list(self.categories) + extra, dtype=object)


class TableEncoder(TransformerMixin, BaseEstimator):
    """Reversible encoding of a mixed-type table into a numeric model space.

    Numeric columns get mode-specific normalisation, categorical columns a
    bounded one-hot, missing values an explicit indicator (see the module
    docstring for the details). :meth:`inverse_transform` returns a DataFrame
    with the training columns, order and dtypes.

    Parameters
    ----------
    max_modes : int, default=10
        Upper bound on the Gaussian modes per numeric column; modes whose weight
        falls under ``mode_threshold`` are dropped.
    mode_threshold : float, default=0.005
        Smallest mixture weight a mode needs to be kept.
    max_categories : int, default=100
        Most categories one column gets its own one-hot slot for; the rarer
        values share a "rare" slot that decodes to one of them, drawn by
        training frequency.
    max_fit_rows : int, default=5000
        The mixtures are fitted on at most this many rows (a seeded
        subsample), which bounds the fitting time of large tables.
    point_share : float, default=0.02
        Smallest share of a numeric column's values (and at least ten rows)
        that one value needs to become a point mass: a mode slot of its own,
        reproduced exactly.
    max_points : int, default=16
        Most point masses per numeric column (the most frequent are kept);
        0 finds none (as a differentially private fit does, whose encoder
        must not read exact values of the table).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample of the mixture fit.

    Attributes
    ----------
    columns_ : list of ColumnSpec
        What was learnt about each column, in table order.
    column_index_ : pandas.Index
        The training columns, restored on decoding.
    spans_ : list of Span
        The model-space layout, in order.
    n_features_out_ : int
        Width of the model space.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit``.
    n_features_in_ : int
        Number of columns seen in ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from augment.tabular import TableEncoder
    >>> df = pd.DataFrame({"age": [23, 35, 41, 58], "city": ["a", "b", "a", None]})
    >>> enc = TableEncoder().fit(df)
    >>> Z = enc.transform(df)
    >>> enc.inverse_transform(Z).equals(df)
    True
    """

    _parameter_constraints = {
        "max_modes": [Interval(numbers.Integral, 1, None, closed="left")],
        "mode_threshold": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_categories": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_fit_rows": [Interval(numbers.Integral, 2, None, closed="left")],
        "point_share": [Interval(numbers.Real, 0, 1, closed="right")],
        "max_points": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_modes=10,
        mode_threshold=0.005,
        max_categories=100,
        max_fit_rows=5000,
        point_share=0.02,
        max_points=16,
        random_state=None,
    ):
        self.max_modes = max_modes
        self.mode_threshold = mode_threshold
        self.max_categories = max_categories
        self.max_fit_rows = max_fit_rows
        self.point_share = point_share
        self.max_points = max_points
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the encoding of every column of ``X``.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_columns)
            The table. Columns may be numeric, integer, nullable integer,
            boolean, object, string, category or datetime64 (with or without a
            time zone), with missing values.
        y : None
            Ignored.

        Returns
        -------
        self : TableEncoder
        """
        X = self._as_table(X, fitting=True)
        specs, numeric = [], []
        for name in X.columns:
            spec = _describe_column(X[name])
            specs.append(spec)
            if spec.kind == "categorical":
                _fit_categories(spec, X[name], self.max_categories)
            else:
                numeric.append((spec, to_float(X[name], spec.kind)))
        self._fit_numeric(numeric, len(X))
        self.columns_, self.spans_ = specs, []
        for spec in specs:
            spec.spans = _layout(spec, start=self.n_features_out)
            self.spans_.extend(spec.spans)
        self.n_features_out_ = self.n_features_out
        return self

    def _as_table(self, X, fitting):
        """``X`` as a DataFrame; arrays and lists become one with columns 0..n-1."""
        if not isinstance(X, pd.DataFrame):
            array = check_array(
                X,
                dtype=None,
                ensure_all_finite="allow-nan",
                ensure_min_samples=2 if fitting else 0,
                input_name="X",
            )
            X = pd.DataFrame(array)
        X = check_table(X, "X", allow_empty=not fitting)
        if fitting:
            record_feature_names(self, X.shape[1], X.columns)
            self.column_index_ = X.columns
            return X
        missing = [c for c in self.column_index_ if c not in X.columns]
        if missing and isinstance(X.columns, pd.RangeIndex):
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if missing:
            raise ValueError(f"X lacks the training column(s) {missing}.")
        return X

    @property
    def n_features_out(self):
        spans = getattr(self, "spans_", [])
        return spans[-1].stop if spans else 0

    def _fit_numeric(self, numeric, n_rows):
        if not numeric:
            return
        for spec, column in numeric:
            spec.points = point_masses(column, self.point_share, self.max_points)
        # the mixtures model the other values: point masses are set aside
        rest = [np.where(np.isin(c, s.points), np.nan, c) for s, c in numeric]
        values = np.column_stack(rest)
        if n_rows > self.max_fit_rows:
            rng = check_random_state(self.random_state)
            rows = rng.choice(n_rows, self.max_fit_rows, replace=False)
            values = values[np.sort(rows)]
        fitted = ~np.isnan(values).all(axis=0)
        loc = np.zeros(values.shape[1])
        scale = np.ones(values.shape[1])
        loc[fitted] = np.nanmean(values[:, fitted], axis=0)
        spread = np.nanstd(values[:, fitted], axis=0)
        # a column of one value has a spread of rounding noise (1e-17 for 0.1),
        # which must not become its scale: its modes' widths would vanish
        varies = spread > _CONSTANT_SPREAD * np.maximum(np.abs(loc[fitted]), 1.0)
        scale[fitted] = np.where(varies, spread, 1.0)
        filled = np.where(fitted, values, 0.0)  # columns of points only: unused
        weights, means, stds = fit_mixtures((filled - loc) / scale, self.max_modes)
        for j, ((spec, column), left) in enumerate(zip(numeric, rest, strict=True)):
            keep = weights[j] > self.mode_threshold
            spec.weights, spec.means, spec.stds = merge_overlapping_modes(
                weights[j, keep] / weights[j, keep].sum(),
                means[j, keep] * scale[j] + loc[j],
                stds[j, keep] * scale[j],
            )
            left = left[~np.isnan(left)]
            if not len(left):  # every value is a point mass: no modes
                spec.weights, spec.means, spec.stds = (np.zeros(0),) * 3
            elif not fitted[j]:  # the subsample held points only
                spec.weights, spec.means = np.ones(1), np.array([left.mean()])
                spec.stds = np.array([max(left.std(), 1e-3 * abs(left.mean()), 1e-9)])
            spec.reach = _mode_reach(spec, left)
            spec.low, spec.high = np.nanmin(column), np.nanmax(column)
            spec.step, spec.single = _rounding_step(column, spec)
            if spec.kind == "numeric" and self.max_points:
                spec.seen, spec.seen_cdf = seen_values(left)

    # ------------------------------------------------------------ transform
    def transform(self, X, labels=None):
        """Encode a table into the model space.

        Parameters
        ----------
        X : DataFrame with the training columns
        labels : ndarray of int or None, default=None
            Class index of every row: numbers that have a map per class
            (``class_warp_u``) are encoded by their row's. None: by the
            column's own map.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        X = self._as_table(X, fitting=False)
        Z = np.zeros((len(X), self.n_features_out_), dtype=np.float32)
        rows = np.arange(len(X))
        for spec in self.columns_:
            if spec.kind == "categorical":
                slot = _category_slots(spec, X[spec.name])
                Z[rows, spec.spans[0].start + slot] = 1.0
                continue
            x = to_float(X[spec.name], spec.kind)
            scalar, mode_span = spec.spans[0], spec.spans[1]
            absent = np.isnan(x)
            slot, offset = encode_numbers(
                spec, np.where(absent, typical(spec), x), labels
            )
            Z[:, scalar.start] = offset
            Z[rows, mode_span.start + slot] = 1.0
            if spec.has_missing:
                Z[rows, spec.spans[2].start + absent.astype(int)] = 1.0
        return Z

    def inverse_transform(self, Z, random_state=None, labels=None):
        """Decode model-space rows into a table like the training one.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_features_out)
            Model-space rows. One-hot spans may hold scores or probabilities:
            the largest entry wins.
        random_state : int, RandomState instance or None, default=None
            Drives the draw of rare categories (the only randomness in decoding).
        labels : ndarray of int or None, default=None
            Class index of every row, as in :meth:`transform`.

        Returns
        -------
        DataFrame of shape (n_samples, n_features_in)
            With the training column names, order and dtypes.
        """
        check_is_fitted(self)
        Z = np.asarray(Z)
        if Z.ndim != 2 or Z.shape[1] != self.n_features_out_:
            raise ValueError(
                f"Z must have shape (n_samples, {self.n_features_out_}); got {Z.shape}."
            )
        rng = check_random_state(random_state)
        # column-major: every span's argmax then reads contiguous memory
        Z = Z.T.astype(np.float64, order="C")
        columns = {}
        for spec in self.columns_:
            if spec.kind == "categorical":
                values = _decode_categories(spec, Z, rng)
            else:
                values = _decode_numeric(spec, Z, labels)
            columns[spec.name] = _restore_dtype(values, spec)
        table = pd.DataFrame(columns)
        table.columns = self.column_index_
        return table

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


# ---------------------------------------------------------------- validation
def check_table(X, name, *, allow_empty=False):
    """Validate a table and return it as a DataFrame (never the caller's object).

    Raises a ``TypeError`` or ``ValueError`` naming ``name`` and the offending
    column for what the encoder cannot learn from: no rows or columns,
    duplicated names, an all-missing column, infinite values, or an object
    column that mixes types.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(X).__name__}.")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no columns (shape {X.shape}).")
    if not allow_empty and len(X) == 0:
        raise ValueError(f"{name} has no rows (shape {X.shape}).")
    if X.columns.has_duplicates:
        dupes = X.columns[X.columns.duplicated()].unique().tolist()
        raise ValueError(f"{name} has duplicated column names {dupes}.")
    if allow_empty:
        return X
    for column in X.columns:
        values = X[column]
        if values.isna().all():
            raise ValueError(
                f"Column {column!r} of {name} has only missing values; "
                "drop it, there is nothing to learn from it."
            )
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
            values
        ):
            if np.isinf(_numeric_array(values)).any():
                raise ValueError(
                    f"Column {column!r} of {name} holds infinite values; "
                    "replace them (by NaN, say) before fitting."
                )
    return X


def _numeric_array(values):
    if isinstance(values.dtype, pd.SparseDtype):
        values = values.sparse.to_dense()
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def column_kind(values):
    """How a column is modelled and evaluated: ``"numeric"``, ``"datetime"``
    or ``"categorical"``, from its dtype (and its values, for objects).

    Booleans, strings, pandas categories and objects holding strings are
    categorical; numbers (also objects holding only numbers) numeric. The
    one place that decides it, for the encoder and ``augment.evaluate``.
    Complex numbers, timedeltas and objects mixing types raise a TypeError
    naming the column.
    """
    name, dtype = values.name, values.dtype
    if isinstance(dtype, pd.SparseDtype):
        dtype = dtype.subtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise TypeError(
                f"Column {name!r} is complex; only real numbers are supported."
            )
        return "numeric"
    if pd.api.types.is_timedelta64_dtype(dtype):
        raise TypeError(
            f"Column {name!r} is a timedelta; convert it to a number of seconds first."
        )
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    if inferred in ("mixed", "mixed-integer") or not _hashable(values):
        kinds = sorted({type(v).__name__ for v in values.dropna().head(1000)})
        raise TypeError(
            f"Column {name!r} mixes value types ({', '.join(kinds)}); "
            "convert it to a single type (all strings, say) first."
        )
    return "categorical"


def to_float(values, kind):
    """A numeric or datetime column as float64, NaN where missing; datetimes
    as seconds since the epoch (UTC for those with a time zone)."""
    if kind != "datetime":
        return _numeric_array(values)
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    nanos = values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    nanos[values.isna().to_numpy()] = np.nan
    return nanos / 1e9


def _describe_column(values):
    """What the encoder needs to know of a column before fitting it."""
    kind = column_kind(values)
    tz = getattr(values.dtype, "tz", None) if kind == "datetime" else None
    return ColumnSpec(values.name, values.dtype, kind, bool(values.isna().any()), tz=tz)


def _hashable(values):
    try:
        values.dropna().head(1000).map(hash)
    except TypeError:
        return False
    return True


# ------------------------------------------------------------------- numeric
def point_masses(column, share, max_points):
    """Values of a numeric column that carry at least ``share`` of its
    values and ten rows: the ``max_points`` most frequent, sorted. The one
    place that decides which values are reproduced exactly (the encoder's
    point-mass slots, TabularTransformer's exact tokens)."""
    x = column[~np.isnan(column)]
    if max_points == 0 or not len(x):
        return np.zeros(0)
    values, counts = np.unique(x, return_counts=True)
    frequent = (counts >= share * len(x)) & (counts >= _MIN_POINT_ROWS)
    values, counts = values[frequent], counts[frequent]
    return np.sort(values[np.argsort(-counts, kind="stable")[:max_points]])


def points_of(spec):
    """The point masses of a numeric column's spec (none for files written
    before point masses existed)."""
    return np.zeros(0) if spec.points is None else spec.points


def typical(spec):
    """A value that stands in for missing ones in the model space: the
    centre of the heaviest mode, else the first point mass."""
    if len(spec.means):
        return spec.means[np.argmax(spec.weights)]
    return points_of(spec)[0]


def warp(spec, x, labels=None, inverse=False):
    """Numbers through the column's monotone map (``warp_x`` to ``warp_u``),
    or back with ``inverse``; by each row's class's map where the column has
    one per class and ``labels`` (class indices) are given."""

    def through(values, u):
        if inverse:
            return np.interp(values, u, spec.warp_x)
        return np.interp(values, spec.warp_x, u)

    if labels is None or spec.class_warp_u is None:
        return through(x, spec.warp_u)
    out = np.empty(len(x))
    for k, u in enumerate(spec.class_warp_u):  # a few classes: one each
        at = labels == k
        out[at] = through(x[at], u)
    return out


def encode_numbers(spec, x, labels=None):
    """Mode slots and scalars of numbers ``x`` (no NaN): a point mass's own
    slot and 0, else its most likely mode (after the point slots) and the
    offset from that mode's mean in ``reach`` units, clipped to [-1, 1].
    ``labels``: the class index of every value (see :func:`warp`)."""
    if spec.warp_x is not None:
        x = warp(spec, x, labels)
    points = points_of(spec)
    if not len(points):
        at, is_point = np.zeros(len(x), int), np.zeros(len(x), bool)
    else:
        at = nearest_index(points, x)
        is_point = points[at] == x
    if not len(spec.means):  # only point masses: the nearest one
        return at, np.zeros(len(x))
    mode = _most_likely_mode(spec, x)
    offset = np.clip((x - spec.means[mode]) / spec.reach[mode], -1, 1)
    return (
        np.where(is_point, at, len(points) + mode),
        np.where(is_point, 0.0, offset),
    )


def decode_numbers(spec, slot, offset, labels=None):
    """Numbers from mode slots and scalars, the inverse of
    :func:`encode_numbers`: point masses exactly, other values clipped to
    the training range and rounded to the training precision."""
    points = points_of(spec)
    mode = np.clip(slot - len(points), 0, max(len(spec.means) - 1, 0))
    if len(spec.means):
        x = np.clip(offset, -1, 1) * spec.reach[mode] + spec.means[mode]
        if spec.warp_x is not None:
            x = warp(spec, x, labels, inverse=True)
        x = np.clip(x, spec.low, spec.high)
        if spec.step is not None:
            x = np.round(x / spec.step) * spec.step
        if spec.single:
            x = x.astype(np.float32).astype(np.float64)
        if spec.seen is not None:
            x = snap_to_seen(spec, x)
    else:
        x = np.zeros(len(slot))
    if len(points):
        x = np.where(slot < len(points), points[np.minimum(slot, len(points) - 1)], x)
    return x


def nearest_index(values, x):
    """The index of the nearest of sorted ``values`` (at least one) to each
    of ``x``, the lower one on a tie."""
    right = np.searchsorted(values, x).clip(1, len(values) - 1)  # one value: 0
    left = right - 1 if len(values) > 1 else right
    return np.where(np.abs(x - values[left]) <= np.abs(values[right] - x), left, right)


def seen_values(column):
    """The values that occur more than once in a numeric column whose values
    repeat (at least ``_SEEN_SHARE`` of them occur more than once, on at most
    ``_MAX_SEEN`` distinct values) and the share of those rows up to each;
    else ``(None, None)``. ``column`` holds the values the modes model (no point
    masses: those decode to themselves)."""
    x = column[~np.isnan(column)]
    values, counts = np.unique(x, return_counts=True)
    repeated = counts > 1
    if len(values) > _MAX_SEEN or counts[repeated].sum() < _SEEN_SHARE * len(x):
        return None, None
    # only values that several rows hold: a value of one row alone (one
    # person's income) is neither kept in the model nor written out
    values, counts = values[repeated], counts[repeated]
    if len(values) < 2:
        return None, None
    return values, np.cumsum(counts) / counts.sum()


def snap_to_seen(spec, x):
    """Numbers ``x`` (no NaN) moved onto the column's seen values by
    quantile: the training CDF, linear between the middles of each value's
    share, gives ``x`` a rank, and the value holding that rank is returned.
    A seen value stays itself, and each one comes out about as often as the
    model puts mass around it: rows heap on the training values as the
    training rows do, and a quantile-binned classifier cannot tell them by
    the values in between."""
    values, upper = spec.seen, spec.seen_cdf
    middle = (np.concatenate([[0.0], upper[:-1]]) + upper) / 2
    rank = np.interp(x, values, middle)
    at = np.searchsorted(upper, rank, side="right")
    return values[np.minimum(at, len(values) - 1)]


def _most_likely_mode(spec, x):
    return np.argmax(
        mode_log_likelihood(x, spec.weights, spec.means, spec.stds), axis=1
    )


def _mode_reach(spec, x):
    """Scale of each mode's scalar: four standard deviations, widened to the
    farthest training value ``x`` (no point masses, no NaN) assigned to the
    mode, so that outliers survive the round trip instead of being clipped."""
    if not len(spec.means):
        return np.zeros(0)
    mode = _most_likely_mode(spec, x)
    reach = 4 * spec.stds.copy()
    np.maximum.at(reach, mode, np.abs(x - spec.means[mode]))
    return reach


def _rounding_step(column, spec):
    """The coarsest precision every training value has: whole days for dates,
    1 for integers, 0.01 for prices, None when there is no such grid; and
    whether the values are single precision ones (3.0999999 for 3.1, each
    possibly a few double steps off, as values that went through text are),
    on that grid up to single precision."""
    observed = column[~np.isnan(column)]
    if spec.kind == "datetime":
        candidates = list(_SECONDS_PER.values())
    else:
        candidates = [10.0**-d for d in range(0, 5)]
    for step in candidates:
        scaled = observed / step
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return step, False
    if spec.kind == "datetime" or not is_single_precision(observed):
        return None, False
    for step in candidates:
        scaled = observed / step
        if np.all(
            np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1, np.abs(scaled))
        ):
            return step, True
    return None, True


def is_single_precision(values):
    """Whether numbers (no NaN) are all single precision values, each at most
    ``_SINGLE_SLACK`` double steps off."""
    with np.errstate(over="ignore", invalid="ignore"):
        single = values.astype(np.float32).astype(np.float64)
    return bool(
        np.all(np.abs(values - single) <= _SINGLE_SLACK * np.spacing(np.abs(values)))
    )


def _decode_numeric(spec, Z, labels=None):
    """Values of a numeric column from the model space, transposed: ``Z`` is
    ``(n_features_out, n_samples)``."""
    scalar, mode_span = spec.spans[0], spec.spans[1]
    slot = np.argmax(Z[mode_span.start : mode_span.stop], axis=0)
    x = decode_numbers(spec, slot, Z[scalar.start], labels)
    if spec.has_missing:
        missing = spec.spans[2]
        x[np.argmax(Z[missing.start : missing.stop], axis=0) == 1] = np.nan
    return x


# --------------------------------------------------------------- categorical
def _fit_categories(spec, values, max_categories):
    counts = values.value_counts(dropna=True)  # most frequent first
    spec.categories = counts.index[:max_categories].to_numpy(dtype=object)
    if len(counts) > max_categories:
        rare = counts.iloc[max_categories:]
        spec.rare_values = rare.index.to_numpy(dtype=object)
        spec.rare_probs = (rare / rare.sum()).to_numpy(dtype=np.float64)


def _category_slots(spec, values):
    """Slot index of each value: its category, else the rare slot, else missing."""
    n_kept = len(spec.categories)
    codes = pd.Index(spec.categories).get_indexer(values.astype(object))
    missing = values.isna().to_numpy()
    unseen = (codes < 0) & ~missing
    if unseen.any() and spec.rare_values is None:
        raise ValueError(
            f"Column {spec.name!r} holds values never seen in fit, such as "
            f"{values[unseen].iloc[0]!r}."
        )
    codes = np.where(unseen, n_kept, codes)
    if missing.any():
        if not spec.has_missing:
            raise ValueError(f"Column {spec.name!r} has missing values, unlike in fit.")
        codes = np.where(missing, len(spec.slots) - 1, codes)
    return codes


def _decode_categories(spec, Z, rng):
    """Values of a categorical column; ``Z`` transposed as in _decode_numeric."""
    span = spec.spans[0]
    values = spec.slots[np.argmax(Z[span.start : span.stop], axis=0)]
    if spec.rare_values is not None:
        # one uniform for every row, rare or not, so that each row's value
        # depends on its own draw only (rows decoded together or apart agree)
        uniform = rng.random_sample(len(values))
        is_rare = values == _RARE
        cdf = np.cumsum(spec.rare_probs)
        pick = np.searchsorted(cdf, uniform[is_rare] * cdf[-1], side="right")
        values[is_rare] = spec.rare_values[np.minimum(pick, len(cdf) - 1)]
    return values


# -------------------------------------------------------------------- layout
def _layout(spec, start):
    if spec.kind == "categorical":
        return [Span(spec.name, "category", start, len(spec.slots))]
    n_points = len(points_of(spec))
    spans = [
        Span(spec.name, "scalar", start, 1),
        Span(spec.name, "mode", start + 1, n_points + len(spec.means)),
    ]
    if spec.has_missing:
        spans.append(Span(spec.name, "missing", spans[-1].stop, 2))
    return spans


# ---------------------------------------------------------------- restoring
def _restore_dtype(values, spec):
    """Give decoded values the training column's dtype."""
    dtype = spec.dtype
    if spec.kind == "datetime":
        nanos = np.where(np.isnan(values), 0, np.round(values * 1e9)).astype(np.int64)
        stamps = pd.Series(pd.to_datetime(nanos, unit="ns"))
        stamps[np.isnan(values)] = pd.NaT
        if spec.tz is not None:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(spec.tz)
        return stamps.astype(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        # straight to object: no detour through an inferred string dtype
        return pd.Series(values, dtype=object)
    return pd.Series(values).astype(dtype)

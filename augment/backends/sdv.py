"""SDVGenerator: SDV's single-table synthesizers behind this package's API.

SDV (https://sdv.dev, BUSL-1.1) is imported only inside the functions that need
it: the core package installs, imports and passes its tests without it. The
generator is a :class:`~augment.tabular.TabularGenerator` that overrides only
the two data-level entry points of :class:`~augment.base.BaseGenerator`,
``_fit`` and ``_sample_rows``, since SDV works on DataFrames, not tensors:
validation, targets, exact class counts, ``sampling_strategy``, ``enlarge``
and pandas round trips are the package's own.
"""

import contextlib
import inspect
import io
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils._param_validation import HasMethods, StrOptions

from .._docstrings import fill_doc
from .._validation import record_feature_names
from ..base import BaseGenerator
from ..tabular.encoder import _describe_column, _numeric_array
from ..tabular.generator import _TARGET, TabularGenerator, check_condition_mapping

_SYNTHESIZERS = {
    "gaussian_copula": "GaussianCopulaSynthesizer",
    "ctgan": "CTGANSynthesizer",
    "tvae": "TVAESynthesizer",
    "copulagan": "CopulaGANSynthesizer",
}
# the only one of them that conditions natively in SDV 2.0; the others
# reject-sample (CopulaGAN inherits CTGAN's sampling)
_NATIVE = {"gaussian_copula"}
_LABEL = "__augment_label__"  # the column the class labels join the table as
_TABLE = "table"


@fill_doc
class SDVGenerator(TabularGenerator):
    """An SDV single-table synthesizer as an over-sampler of this package.

    The table (and ``y``, as one more column) is handed to one of SDV's
    synthesizers, with column types set from the frame's dtypes; sampling asks
    SDV for the classes' rows through its conditional sampling, so that class
    counts are exact. Everything else is this package's: ``fit``, ``sample``,
    ``fit_resample``, ``sampling_strategy``, ``enlarge``, DataFrames in and out
    with their column order and dtypes, arrays in and out, pipelines.

    Needs SDV: ``pip install "augment-learn[sdv]"`` (SDV is BUSL-1.1 licensed
    and pins pandas<3).

    Parameters
    ----------
    synthesizer : {"gaussian_copula", "ctgan", "tvae", "copulagan"}, \
default="gaussian_copula"
        SDV's ``GaussianCopulaSynthesizer``, ``CTGANSynthesizer``,
        ``TVAESynthesizer`` or ``CopulaGANSynthesizer``.
    metadata : dict, sdv.metadata.Metadata or None, default=None
        Column types. None sets them from the dtypes: numbers are
        ``"numerical"``, bools ``"boolean"``, datetimes ``"datetime"``,
        everything else (strings, categories, objects) ``"categorical"``;
        SDV's own detection, which guesses from column names (a yes/no column
        named ``voice_mail_plan`` becomes an e-mail address), is never used.
        A dict ``{column: sdtype}`` or ``{column: {"sdtype": ..., ...}}``
        overrides the columns it names (column positions for an array). An
        SDV ``Metadata`` of one table gives the type of every column it names.
    params : dict or None, default=None
        Keyword arguments of the SDV synthesizer, such as ``{"epochs": 50}``
        for CTGAN. A dict rather than ``**params``: scikit-learn estimators
        take explicit keyword arguments only (``get_params``, ``clone`` and
        grid searches need them), and a dict keeps ``clone`` and
        ``sdvgenerator__params`` working. None: SDV's defaults. ``verbose`` is
        passed on unless given here.
    %(sampling_strategy)s
    %(enlarge)s
    random_state : int, RandomState instance or None, default=None
        Seeds the fit and every sampling call. SDV draws from numpy's and
        torch's global generators: the fit runs with both seeded from
        ``random_state`` and puts them back as they were afterwards; every
        sampling call resets SDV's sampling state (``reset_sampling``) and
        seeds the synthesizer with a seed of its own. The same value, data,
        SDV version and machine give identical rows; successive ``sample``
        calls give new rows, and a refit replays the same sequence.
        CTGAN, TVAE and CopulaGAN train on a GPU when SDV finds one
        (``params={"enable_gpu": False}`` keeps them on the CPU), where
        results are not bit-identical.
    verbose : int, default=0
        Show SDV's progress (training losses, sampling progress bars).

    Attributes
    ----------
    synthesizer_ : sdv.single_table.BaseSingleTableSynthesizer
        The fitted SDV synthesizer.
    metadata_ : sdv.metadata.Metadata
        The column types it was fitted with. SDV sees the ``i``-th column of
        ``X`` as ``"column_i"`` (so that names never change the rows), the
        label as ``"__augment_label__"`` and a continuous target as
        ``"__augment_target__"``.
    %(target_attributes)s
    n_features_in_ : int
        Number of columns of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when a DataFrame with string column names.

    Notes
    -----
    Class counts are exact: rows of class ``c`` are asked of SDV with
    ``sample_from_conditions`` and a ``Condition`` on the label column.
    GaussianCopula conditions natively (the conditional distribution of the
    other columns given the label). CTGAN, TVAE and CopulaGAN cannot: SDV
    reject-samples them, drawing unconditional rows until it has enough of
    the class (at most 100 tries per batch). A class the model rarely
    generates can then come back short; this generator never returns fewer
    rows than asked and raises a ``RuntimeError`` instead (more epochs, or a
    native model, help).

    Datetime columns are given to SDV as ``datetime64`` values (time zones
    converted to UTC and back), which SDV reads without a format string.

    See Also
    --------
    TabularVAE, TabularGAN : This package's own tabular generators.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from augment.backends import SDVGenerator
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> gen = SDVGenerator("gaussian_copula", random_state=0)
    >>> X_res, y_res = gen.fit_resample(X[:120], y[:120])  # doctest: +SKIP
    >>> y_res.value_counts().to_dict()  # doctest: +SKIP
    {0: 50, 1: 50, 2: 50}
    """

    _parameter_constraints = {
        **BaseOverSampler._parameter_constraints,
        "synthesizer": [StrOptions(set(_SYNTHESIZERS))],
        "metadata": [None, Mapping, HasMethods(["to_dict"])],
        "params": [None, Mapping],
        "enlarge": BaseGenerator._parameter_constraints["enlarge"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        synthesizer="gaussian_copula",
        *,
        metadata=None,
        params=None,
        sampling_strategy="auto",
        enlarge=None,
        random_state=None,
        verbose=0,
    ):
        self.synthesizer = synthesizer
        self.metadata = metadata
        self.params = params
        self.sampling_strategy = sampling_strategy
        self.enlarge = enlarge
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, data, x_format, y_info):
        single_table, Metadata = _import_sdv()
        labels = self._fit_target(x_format, y_info)
        record_feature_names(self, data.shape[1], data.columns)
        # SDV sees positions, not names: they need not be strings, and a frame
        # and its array give the same rows (CTGAN's results depend on names)
        names = list(data.columns)
        self._sdv_names = [f"column_{i}" for i in range(len(names))]
        self._columns = [_describe_column(data[c]) for c in names]
        # the values a condition may ask for, as the table holds them
        self._values = {
            i: pd.Index(data[spec.name].dropna().unique())
            for i, spec in enumerate(self._columns)
            if spec.kind == "categorical"
        }
        frame = _to_sdv(data, self._columns, self._sdv_names)
        if labels is not None:
            frame[_LABEL] = labels.astype(str)  # class index, as a category
        elif y_info.kind == "continuous":
            frame[_TARGET] = y_info.values
        self.metadata_ = Metadata.load_from_dict(
            {"tables": {_TABLE: {"columns": self._column_types(frame, names)}}}
        )
        synthesizer = self._build(single_table)
        with _seeded(self._seed), _quiet(self.verbose):
            synthesizer.fit({_TABLE: frame})
        self.synthesizer_ = synthesizer
        self.history_ = []

    def _column_types(self, frame, names):
        """SDV column metadata: from the dtypes, then ``metadata``'s overrides."""
        types = {
            sdv_name: {"sdtype": _sdtype(spec)}
            for sdv_name, spec in zip(self._sdv_names, self._columns)
        }
        if _LABEL in frame:
            types[_LABEL] = {"sdtype": "categorical"}
        if _TARGET in frame:
            types[_TARGET] = {"sdtype": "numerical"}
        overrides = self.metadata
        if overrides is None:
            return types
        if not isinstance(overrides, Mapping):  # an SDV Metadata
            tables = overrides.to_dict().get("tables", {})
            if len(tables) != 1:
                raise ValueError(
                    f"metadata must describe a single table; it describes "
                    f"{len(tables)} ({list(tables)})."
                )
            overrides = next(iter(tables.values())).get("columns", {})
        position = {name: i for i, name in enumerate(names)}
        for column, spec in overrides.items():
            if column not in position:
                raise ValueError(
                    f"metadata: {column!r} is not a column of X; the columns are "
                    f"{names[:20]}."
                )
            if isinstance(spec, str):
                spec = {"sdtype": spec}
            if not isinstance(spec, Mapping) or "sdtype" not in spec:
                raise ValueError(
                    f"metadata: column {column!r} needs an sdtype (a str, or a "
                    f"dict with an 'sdtype' key); got {spec!r}."
                )
            types[self._sdv_names[position[column]]] = dict(spec)
        return types

    def _build(self, single_table):
        """The SDV synthesizer, its parameters checked against its signature."""
        cls = getattr(single_table, _SYNTHESIZERS[self.synthesizer])
        params = dict(self.params or {})
        accepted = inspect.signature(cls.__init__).parameters
        unknown = [p for p in params if p not in accepted or p == "metadata"]
        if unknown:
            known = [p for p in accepted if p not in ("self", "metadata")]
            raise ValueError(
                f"params: SDV's {cls.__name__} has no parameter {unknown[0]!r}; "
                f"its parameters are {known}."
            )
        if "verbose" in accepted:
            params.setdefault("verbose", bool(self.verbose))
        try:
            return cls(self.metadata_, **params)
        except (TypeError, ValueError) as error:
            # name the culprit: the first parameter SDV rejects on its own
            culprit = next(
                (p for p in params if _rejects(cls, self.metadata_, p, params[p])),
                None,
            )
            named = f"params[{culprit!r}]" if culprit else f"params={params!r}"
            raise ValueError(f"{named}: SDV's {cls.__name__} says: {error}") from error

    # --------------------------------------------------------------- sample
    @fill_doc
    def sample(self, n_samples, y=None, conditions=None):
        """Draw synthetic rows from the fitted SDV synthesizer.

        Parameters
        ----------
        n_samples : int
            Number of rows, >= 0.
        y : label, array-like of shape (n_samples,) or None, default=None
            Only for a generator fitted with class labels. None draws rows
            from SDV's joint model, labels included (their counts follow the
            model); a single label gives every row that label; an array gives
            row ``i`` the label ``y[i]``. Asked labels are exact: natively
            conditioned by GaussianCopula, rejection-sampled by the others
            (see the class notes).
        conditions : dict or None, default=None
            ``{column: value}`` for discrete (categorical, string, boolean)
            columns, values seen in training; integer positions for a
            generator fitted on an array. Every returned row has these
            values, asked of SDV like the labels (natively or by rejection).

        Returns
        -------
        %(sample_returns)s
        """
        return super().sample(n_samples, y, conditions)

    def _check_conditions(self, conditions):
        """``{column: value}`` into ``[(SDV column, training value)]``."""
        if not check_condition_mapping(conditions):
            return []
        names = [spec.name for spec in self._columns]
        allowed = [names[i] for i in self._values]
        checked = []
        for column, value in conditions.items():
            i = names.index(column) if column in names else None
            if i not in self._values:
                reason = "is numeric" if i is not None else "is not a column of X"
                raise ValueError(
                    f"conditions: column {column!r} {reason}; the columns that "
                    f"can be conditioned on are {allowed}."
                )
            found = (
                self._values[i].get_indexer([value])[0] if np.ndim(value) == 0 else -1
            )
            if found < 0:
                raise ValueError(
                    f"conditions: {value!r} was never seen in column {column!r} "
                    f"(values include {list(self._values[i][:10])})."
                )
            checked.append((self._sdv_names[i], self._values[i][found]))
        return checked

    def _label_indices(self, n_samples, y, conditions=()):
        if y is None and self.target_type_ == "classes":
            return None  # SDV's joint model draws the labels with the rows
        return super()._label_indices(n_samples, y, conditions)

    def _sample_rows(self, n_samples, labels, conditions=(), stream=None):
        seed = int(self._next_seed(stream))
        synthesizer = self.synthesizer_
        columns = dict(conditions)
        with _seeded(seed), _quiet(self.verbose):
            # the same state for every call with this seed, whatever came before
            synthesizer.reset_sampling()
            synthesizer._set_random_state(seed)
            if not n_samples:
                frame = None
            elif labels is None and not columns:
                frame = _table(synthesizer.sample(n_samples))
            else:
                frame = self._sample_conditions(n_samples, labels, columns)
        if frame is None:
            frame = pd.DataFrame(columns=self._sdv_names)
        elif len(frame) != n_samples:
            raise RuntimeError(
                f"SDV's {type(synthesizer).__name__} returned {len(frame)} rows "
                f"instead of {n_samples}."
            )
        table = _from_sdv(frame, self._columns, self._sdv_names)
        if self.target_type_ == "classes":
            if labels is None:  # the labels SDV generated with the rows
                labels = frame[_LABEL].astype(int).to_numpy() if n_samples else []
            return table, self.classes_[np.asarray(labels, dtype=np.intp)]
        if self.target_type_ == "continuous":
            return table, frame[_TARGET].to_numpy(dtype=np.float64)
        return table, None

    def _sample_conditions(self, n_samples, labels, columns):
        """Rows with the asked column values and, row by row, the asked class
        indices ``labels`` (None: any), exactly or an error."""
        from sdv.sampling import Condition

        groups = np.zeros(n_samples, dtype=np.intp) if labels is None else labels
        counts = np.bincount(groups, minlength=1)
        asked = np.flatnonzero(counts)
        conditions = [
            Condition(
                columns if labels is None else {**columns, _LABEL: str(c)},
                num_rows=int(counts[c]),
            )
            for c in asked
        ]
        try:
            with warnings.catch_warnings():
                # SDV warns when rejection sampling comes back short: we raise
                warnings.filterwarnings("ignore", message="Only able to sample")
                frame = _table(self.synthesizer_.sample_from_conditions(conditions))
        except ValueError as error:
            if "Unable to sample" not in str(error):
                raise
            frame = pd.DataFrame(columns=[_LABEL, *self._sdv_names])
        if labels is None:
            got = np.array([len(frame)])
        else:
            got = frame[_LABEL].astype(str).value_counts()
            got = got.reindex([str(c) for c in asked], fill_value=0).to_numpy()
        if (got < counts[asked]).any():
            short = int(np.argmax(got < counts[asked]))
            what = "rows asked"
            if labels is not None:
                label = self.classes_[asked[short]]
                label = label.item() if isinstance(label, np.generic) else label
                what += f" for class {label!r}"
            if columns:
                what += " with the conditions"
            how = (
                "conditions natively"
                if self.synthesizer in _NATIVE
                else "can only rejection-sample conditions"
            )
            raise RuntimeError(
                f"SDV's {type(self.synthesizer_).__name__} returned "
                f"{got[short]} of the {counts[asked][short]} {what}: it {how}, and "
                "the model rarely generates such rows. Ask for fewer of them, or "
                "use synthesizer='gaussian_copula', which conditions natively."
            )
        # SDV returns the classes one after the other, in the order asked:
        # give row i the class labels[i]
        order = np.argsort(groups, kind="stable")
        return frame.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)

    # SDV fits and samples DataFrames: ``_fit`` and ``_sample_rows`` replace
    # the tensor-level model hooks, which are never called
    def _train(self, data, labels, generator):
        raise NotImplementedError("SDVGenerator fits SDV on DataFrames in _fit.")

    def _generate(self, labels, n_samples, generator, **options):
        raise NotImplementedError("SDVGenerator samples SDV in _sample_rows.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


# ======================================================================
# SDV and the frames it sees
# ======================================================================
def _import_sdv():
    """SDV's ``single_table`` module and ``Metadata`` class, or an ImportError
    naming the extra."""
    try:
        import sdv  # noqa: F401  (first: a missing SDV fails here)
        from sdv import single_table
        from sdv.metadata import Metadata
    except ImportError as error:
        raise ImportError(
            'SDVGenerator needs SDV: pip install "augment-learn[sdv]" '
            f"(SDV >= 2.0; it pins pandas<3). The import failed with: {error}"
        ) from error
    return single_table, Metadata


def _rejects(cls, metadata, name, value):
    """Whether SDV's ``cls`` rejects ``name=value`` on its own."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(metadata, **{name: value})
    except (TypeError, ValueError):
        return True
    return False


def _table(sampled):
    """SDV 2 returns ``{table name: DataFrame}``."""
    return sampled[_TABLE] if isinstance(sampled, dict) else sampled


def _sdtype(spec):
    if spec.kind == "numeric":
        return "numerical"
    if spec.kind == "datetime":
        return "datetime"
    return "boolean" if pd.api.types.is_bool_dtype(spec.dtype) else "categorical"


def _to_sdv(table, columns, names):
    """The table as SDV reads it: floats, naive UTC datetimes, objects with NaN."""
    out = {}
    for spec, name in zip(columns, names):
        values = table[spec.name]
        if spec.kind == "numeric":
            out[name] = _numeric_array(values)
        elif spec.kind == "datetime":
            if spec.tz is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
            out[name] = values.astype("datetime64[ns]").to_numpy()
        else:
            out[name] = values.astype(object).where(values.notna(), np.nan).to_numpy()
    return pd.DataFrame(out, index=range(len(table)))


def _from_sdv(frame, columns, names):
    """SDV's rows with the training columns' names and dtypes."""
    out = {}
    for spec, name in zip(columns, names):
        values, dtype = frame[name].reset_index(drop=True), spec.dtype
        if spec.kind == "numeric":
            values = pd.to_numeric(values, errors="coerce").astype(np.float64)
            if pd.api.types.is_integer_dtype(dtype):
                values = values.round()
        elif spec.kind == "datetime":
            values = pd.to_datetime(values)
            if spec.tz is not None:
                values = values.dt.tz_localize("UTC").dt.tz_convert(spec.tz)
        elif pd.api.types.is_bool_dtype(dtype) and not isinstance(
            dtype, pd.CategoricalDtype
        ):
            values = values.astype(object).where(values.notna(), None)
        if isinstance(dtype, np.dtype) and dtype.kind == "O":
            out[spec.name] = values.astype(object)
        else:
            out[spec.name] = values.astype(dtype)
    return pd.DataFrame(out, index=range(len(frame)))


@contextlib.contextmanager
def _seeded(seed):
    """Seed numpy's and torch's global generators, which SDV draws from, for
    the duration of the call, and put them back as they were afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (SDV draws from the global RNG)
    devices = list(range(torch.cuda.device_count()))
    with torch.random.fork_rng(devices=devices):
        np.random.seed(seed % 2**32)  # noqa: NPY002
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)  # noqa: NPY002


@contextlib.contextmanager
def _quiet(verbose):
    """Hide SDV's progress bars (written to stderr) unless ``verbose``."""
    if verbose:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    for warning in caught:  # warnings are not progress: pass them on
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno
        )

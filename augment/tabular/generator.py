"""TabularGenerator: the data hooks of BaseGenerator for tables.

Tables come in as DataFrames (any mix of dtypes) or as arrays and lists; the
:class:`TableEncoder` maps them to model space and back. Conditions on
discrete columns are this layer's: it checks them, fits the
:class:`Conditioning` every model can draw condition vectors from, gives the
class distribution of rows that have them, and writes the asked values into
the decoded rows. A tabular model subclasses :class:`TabularGenerator` and
implements only ``_train`` and ``_generate`` (which says how the model honours
the conditions), given :meth:`TabularGenerator._layout` for the column spans.
Rules between columns (:mod:`augment.tabular.rules`) are resolved on the
training table: the model learns the free columns only and decoding derives
the others, so that every synthetic row keeps the rules.
"""

import numbers
from collections.abc import Mapping
from functools import partial

import numpy as np
import pandas as pd
from sklearn.base import _fit_context
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._docstrings import fill_doc
from .._validation import check_count, record_feature_names
from ..base import BaseGenerator, _check_target
from ..nn import parallel
from .conditioning import ColumnCondition, Conditioning, RangeCondition
from .encoder import TableEncoder, check_table
from .files import BatchTable
from .layout import SpanLayout
from .reservoir import fit_sample
from .rules import Rules

_TARGET = "__augment_target__"  # the column a continuous target joins the table as

#: the differential-privacy parameters, for the models that support them
DP_CONSTRAINTS = {
    # None: chosen for the fit (training_settings_), differently under DP
    "batch_size": [None, Interval(numbers.Integral, 2, None, closed="left")],
    "learning_rate": [None, Interval(numbers.Real, 0, None, closed="neither")],
    "dp_epsilon": [None, Interval(numbers.Real, 0, None, closed="neither")],
    "dp_delta": [None, Interval(numbers.Real, 0, 1, closed="neither")],
    "max_grad_norm": [Interval(numbers.Real, 0, None, closed="neither")],
    "dp_bounds": [None, dict],
    "dp_categories": [None, dict],
}


class TabularGenerator(BaseGenerator):
    """Base class of the tabular generators. Not for direct use."""

    _parameter_constraints = {
        **BaseGenerator._parameter_constraints,
        "rules": [None, StrOptions({"auto"}), list, tuple],
        "enlarge": [
            None,
            Interval(numbers.Real, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    _range_conditions = False  # whether the model honours numeric ranges
    # under differential privacy with classes, whether numbers are encoded
    # by their noisy distribution within their row's class (see
    # augment.tabular.private); a model that reads the encoder's map of a
    # column itself (its bins, its ranges) keeps the one of the whole column
    _class_marginals = True
    _enlarge_auto = True  # the shared docstring of enlarge tells of "auto"

    def _enlarge_for(self, data, y_info):
        """``enlarge="auto"``: the amount :class:`~augment.AugmentedClassifier`
        chooses with a stand-in classifier (logistic regression on the
        :class:`TableEncoder` encoding), none included; its search is kept in
        ``enlarge_search_``."""
        for name in ("enlarge_", "enlarge_search_"):
            if hasattr(self, name):
                delattr(self, name)
        if self.enlarge != "auto":
            return self.enlarge
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        from ..augmented import AugmentedClassifier

        probe = make_pipeline(
            TableEncoder(random_state=0), LogisticRegression(max_iter=1000)
        )
        # enlarge's own candidates (doubling included) and the stricter test
        # they need: AugmentedClassifier's defaults choose between none and
        # balancing only
        search = AugmentedClassifier(
            probe,
            clone(self).set_params(enlarge=None),
            amounts=(0, "balance", 2.0),
            synthetic_weights=[1.0],
            min_t=2.0,
        )
        search.fit(data, y_info.values)
        self.enlarge_search_ = search.cv_results_
        amount = search.amount_
        self.enlarge_ = None if amount == "balance" else amount
        return self.enlarge_

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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the distribution of ``X``, conditionally on ``y`` when given.

        Parameters
        ----------
        X : DataFrame, array-like of shape (n_samples, n_features) or BatchTable
            The training rows. DataFrames may mix numeric, integer, boolean,
            categorical, string and datetime columns, with missing values. A
            :class:`~augment.tabular.ParquetTable` is read batch by batch,
            never whole (its ``target`` column, if any, is ``y``).
        y : array-like of shape (n_samples,), default=None
            Class labels (the model conditions on them and can then sample any
            class exactly), a continuous target (learnt jointly with ``X``), or
            None for an unlabelled table.

        Returns
        -------
        self : object
            The fitted generator.
        """
        if not isinstance(X, BatchTable):
            return super().fit.__wrapped__(self, X, y)
        if getattr(self, "dp_epsilon", None) is not None:
            raise ValueError(
                "dp_epsilon is set: a differentially private fit needs the "
                f"table in memory; pass a DataFrame, not {X!r}."
            )
        if X.target is not None:
            if y is not None:
                raise ValueError(f"y was given, but {X!r} has a target column already.")
            y = X.read_target()
        self._fit(X, _Format("dataframe"), _check_target(y, len(X)))
        return self

    def _fit_encoding(self, table, y_info):
        record_feature_names(self, len(table.columns), table.columns)
        rules = self.rules
        if self._privacy is not None and rules is not None:
            # found rules would come from the rows outside the privacy budget
            rules = [] if isinstance(rules, str) else [r for r in rules if r != "auto"]
        if y_info.kind == "continuous":
            table = table.assign(**{_TARGET: y_info.values})
        self._private_counts = None
        in_memory = isinstance(table, pd.DataFrame)
        if self._privacy is not None:
            self._fit_rules(table, rules)
            return self._fit_private_encoding(self._free_columns(table), y_info)
        fitted, labels = table, None
        if parallel.active() or not in_memory:
            # the rows are not all here: fit once, on a bounded sample of them
            fitted = fit_sample(table, self._max_fit_rows, self._seed)
        elif y_info.kind == "classes":  # rules may read the class label
            labels = y_info.values
        self._rules, self.encoder_ = parallel.once(
            lambda: self._fit_table_encoding(fitted, rules, labels)
        )
        self.rules_ = list(self._rules)
        if in_memory:
            return self.encoder_.transform(self._free_columns(table))
        encoded = np.empty((len(table), self.encoder_.n_features_out_), np.float32)
        start = 0
        for batch in table.batches():
            encoded[start : start + len(batch)] = self.encoder_.transform(
                self._free_columns(batch)
            )
            start += len(batch)
        return encoded

    #: rows of the sample the encoder and rules are fitted on, when the
    #: rows are not all in one process
    _max_fit_rows = 100_000

    def _fit_rules(self, table, rules, labels=None):
        free = table.drop(columns=[_TARGET], errors="ignore")
        self._rules = Rules.fit(
            free,
            rules,
            random_state=self._seed,
            labels=labels,
            bounded=self._privacy is None,
        )
        self.rules_ = list(self._rules)

    def _fit_table_encoding(self, table, rules, labels=None):
        """The rules and the encoder of the free columns, fitted on ``table``
        (and the class labels of its rows, which rules may read)."""
        self._fit_rules(table, rules, labels)
        encoder = TableEncoder(max_modes=self._encoder_modes, random_state=self._seed)
        return self._rules, encoder.fit(self._free_columns(table))

    #: the most Gaussian modes of a number's encoding (a model that reads
    #: numbers through their values alone needs one)
    _encoder_modes = 10

    def _free_columns(self, table):
        """The columns the model learns: the rules' free ones (and the target)."""
        if _TARGET not in table.columns:
            return self._rules.split(table)
        free = self._rules.split(table.drop(columns=[_TARGET]))
        return free.assign(**{_TARGET: table[_TARGET].to_numpy()})

    def _fit_private_encoding(self, table, y_info):
        """The encoder, the class prior and the conditioning's frequencies
        from noisy counts or declared public knowledge (see
        :mod:`augment.tabular.private`)."""
        from .private import private_encoding

        labels = None
        if y_info.kind == "classes":
            labels = self._class_index(y_info.values)
        private = private_encoding(
            table,
            labels,
            self._n_classes,
            self._privacy,
            bounds=self.dp_bounds,
            categories=self.dp_categories,
            seed=self._seed,
            class_marginals=self._class_marginals,
        )
        self.encoder_ = private.encoder
        if labels is not None:
            self.class_prior_ = private.class_counts / private.class_counts.sum()
        self._private_counts = private.slot_counts(self._n_classes)
        self._private_moments = private.moments
        return self.encoder_.transform(private.table, labels)

    def _fit_conditioning(self, data, labels):
        # under differential privacy, the frequencies are the noisy ones (none
        # when loading a model file: the saved counts are loaded in)
        self.conditioning_ = Conditioning(
            self.encoder_.spans_,
            data,
            labels,
            self._n_classes,
            counts=vars(self).pop("_private_counts", None),
        )
        if data is not None:  # the frequencies of every rank's rows
            parallel.sum_(self.conditioning_.counts)

    def _label_distribution(self, conditions):
        if not conditions:
            return self.class_prior_
        # the classes of rows with these values, not the overall prior
        return self.conditioning_.class_probs(conditions)

    def _layout(self):
        """The encoder's spans as a torch module (moves with the model)."""
        return SpanLayout(self.encoder_.spans_)

    @fill_doc
    def sample(self, n_samples, y=None, conditions=None, *, random_state=None, start=0):
        """Draw synthetic rows from the fitted model, optionally conditioned.

        Parameters
        ----------
        n_samples : int
            Number of rows, >= 0.
        %(sample_y)s
        conditions : dict or None, default=None
            ``{column: value}`` for discrete (categorical, string, boolean)
            columns of the table; integer positions for a generator fitted on
            an array. Every returned row has these values, and the model
            generates the other columns given them (never by rejection).
            Values of several columns are conditioned on together; a
            combination never seen in training is a best effort: the rows
            still have exactly the asked values, the other columns are what
            the model extrapolates.
            A model that can (:class:`~augment.TabularTransformer`) also
            takes ``{column: (low, high)}`` on numeric columns (bounds
            included, either may be None): every row's value is in the range.
        %(sample_stream)s

        Returns
        -------
        %(sample_returns)s
        """
        check_is_fitted(self)
        checked = self._check_conditions(conditions)
        return self._sample_output(
            n_samples, y, checked, random_state=random_state, start=start
        )

    #: most draws of a row whose derived sums fall outside their training
    #: range (``Rules.bounds``); a row that misses in all keeps its last
    _bounded_draws = 4

    def _decoded_block(self, labels, size, generator, kept, decode_seed, **options):
        """Rows whose derived sums leave their training range are drawn
        again, each from its own candidates (the block's next draws, decoded
        whole with the block's seed), so a row still depends only on its
        block's seeds, its position and its label; the rounds stop once
        every kept row is inside."""
        draw = partial(
            super()._decoded_block,
            labels,
            size,
            generator,
            kept,
            decode_seed,
            **options,
        )
        data, target = draw()
        if not getattr(self._rules, "bounds", None):
            return data, target
        rounds, targets = [data], [target]
        chosen = np.zeros(size, dtype=np.int64)  # the round each row takes
        redraw = self._rules.outside_bounds(data)
        while redraw[kept].any() and len(rounds) < self._bounded_draws:
            data, target = draw()
            chosen[redraw] = len(rounds)
            rounds.append(data)
            targets.append(target)
            redraw &= self._rules.outside_bounds(data)
        if len(rounds) == 1:
            return rounds[0], targets[0]
        at = chosen * size + np.arange(size)
        data = pd.concat(rounds, ignore_index=True).iloc[at].reset_index(drop=True)
        return data, None if target is None else np.concatenate(targets)[at]

    def _decode(self, rows, seed, labels=None, conditions=()):
        table = self.encoder_.inverse_transform(rows, random_state=seed, labels=labels)
        for condition in conditions:
            column = table[condition.column]
            if isinstance(condition, RangeCondition):
                # the model draws inside the range; this only guards the bounds
                table[condition.column] = column.clip(condition.low, condition.high)
                continue
            # exact by construction, also for values decoded from the rare slot
            table[condition.column] = pd.Series(
                [condition.value] * len(table), dtype=column.dtype, index=table.index
            )
        continuous = self.target_type_ == "continuous"
        target = table.pop(_TARGET).to_numpy() if continuous else None
        if labels is not None:
            labels = self.classes_[labels]
        return self._rules.derive(table, labels), target

    def sample_to(
        self,
        path,
        n_samples,
        y=None,
        conditions=None,
        *,
        chunk_size=100_000,
        random_state=None,
    ):
        """Write synthetic rows to a Parquet or CSV file, chunk by chunk.

        Memory stays bounded by ``chunk_size`` rows whatever ``n_samples``.
        The rows are those :meth:`sample` returns for the same arguments:
        with ``random_state`` the file is the same whatever ``chunk_size``.

        Parameters
        ----------
        path : str or path-like
            ``.parquet`` (or ``.pq``; the dtypes of the training table are
            kept) or ``.csv``. Written to a temporary file first, so that a
            failed run leaves no partial file behind.
        n_samples : int
            Number of rows, >= 0.
        y : label, array-like, dict or None, default=None
            As in :meth:`sample`; a dict ``{label: n_rows}`` writes that many
            rows of each label, in turn (the counts sum to ``n_samples``).
        conditions : dict or None, default=None
            As in :meth:`sample`.
        chunk_size : int, default=100_000
            Rows generated and written at a time (one Parquet row group each).
        random_state : int or None, default=None
            As in :meth:`sample`.

        Returns
        -------
        path : pathlib.Path
            The file written. A target (class labels or a continuous target)
            is its last column, named as the ``y`` given to ``fit`` (``"y"``
            if it had no name).
        """
        check_is_fitted(self)
        plan = self._sample_plan(n_samples, y, conditions, chunk_size, random_state)
        return self._write_rows(path, plan, 0, plan.n_samples)

    def _sample_plan(self, n_samples, y, conditions, chunk_size, random_state):
        """The checked arguments of :meth:`sample_to` (and of
        :func:`augment.distributed.sample`), with the one stream every chunk
        is drawn from."""
        n_samples = check_count(n_samples, "n_samples")
        chunk_size = check_count(chunk_size, "chunk_size")
        if chunk_size == 0:
            raise ValueError("chunk_size must be >= 1; got 0.")
        labels = _LabelPlan(self, n_samples, y)
        checked = self._check_conditions(conditions)
        stream = self._stream(random_state)  # one stream for every chunk
        return _SamplePlan(labels, n_samples, chunk_size, checked, stream)

    def _write_rows(self, path, plan, start, stop):
        """Rows ``start`` to ``stop - 1`` of a :meth:`_sample_plan` to the file
        ``path``, chunk by chunk (an empty range writes an empty table)."""
        from tqdm.auto import tqdm

        from .files import TableWriter

        writer = TableWriter(path)
        bar = tqdm(
            total=stop - start,
            desc="rows",
            unit="row",
            disable=not self.verbose,
            leave=False,
        )
        try:
            for begin in range(start, max(stop, start + 1), plan.chunk_size):
                size = min(plan.chunk_size, stop - begin)
                y_chunk = plan.labels.chunk(begin, size)
                out = self._sample_output(
                    size, y_chunk, plan.conditions, stream=plan.stream.at(begin)
                )
                writer.write(self._output_frame(out))
                bar.update(size)
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        return writer.close()

    def _output_frame(self, sampled):
        """``sample``'s output as one DataFrame: the table, then the target."""
        X, y = (sampled, None) if self.target_type_ == "none" else sampled
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=[str(c) for c in range(np.shape(X)[1])])
        if y is None:
            return X
        if isinstance(y, pd.DataFrame):  # one column per class, as given
            target = y.reset_index(drop=True)
        else:
            name = getattr(y, "name", None)
            target = pd.Series(y, name="y" if name is None else name).to_frame()
        clash = [c for c in target.columns if c in X.columns]
        if clash:
            raise ValueError(
                f"The target's name {clash[0]!r} is also a column of the table; "
                "fit with a target of another name to write both."
            )
        return pd.concat([X, target], axis=1)

    def _concat(self, *parts):
        return pd.concat(parts, ignore_index=True)

    def _discrete_columns(self):
        """The columns that can be conditioned on: the encoder's categorical ones."""
        return [s for s in self.encoder_.columns_ if s.kind == "categorical"]

    def _check_conditions(self, conditions):
        """Validate ``{column: value}`` into a list of :class:`ColumnCondition`
        (discrete columns) and :class:`RangeCondition` (``(low, high)`` on a
        numeric column, for a model whose ``_range_conditions`` is True)."""
        if not check_condition_mapping(conditions):
            return []
        discrete = self._discrete_columns()
        position = {spec.name: i for i, spec in enumerate(discrete)}
        numeric = {
            spec.name: spec
            for spec in self.encoder_.columns_
            if spec.kind == "numeric" and spec.name != _TARGET
        }
        checked = []
        for column, value in conditions.items():
            rule = self._rules.rule_for(column)
            if rule is not None:
                raise ValueError(
                    f"conditions: column {column!r} is derived by the rule {rule}; "
                    f"condition on {list(rule.sources)} instead, or fit without "
                    "that rule (rules=None, or a list of the rules to keep)."
                )
            if column in numeric and isinstance(value, tuple):
                checked.append(self._check_range(numeric[column], value))
                continue
            if column not in position:
                known = column in self.encoder_.column_index_ and column != _TARGET
                reason = "is numeric" if known else "is not a column of the table"
                allowed = (
                    f"the columns that can be conditioned on are {list(position)}"
                    if position
                    else "the table has no discrete column to condition on"
                )
                if column in numeric and self._range_conditions:
                    allowed += "; a numeric column takes a range (low, high)"
                raise ValueError(f"conditions: column {column!r} {reason}; {allowed}.")
            spec = discrete[position[column]]
            slot, known_value = _slot(spec, value)
            checked.append(ColumnCondition(column, position[column], slot, known_value))
        return checked

    def _check_range(self, spec, bounds):
        """Validate ``(low, high)`` on numeric column ``spec`` into a
        :class:`RangeCondition`, cut to the training range and to the values
        the column can take (whole numbers for an integer column)."""
        name, seen = spec.name, f"[{spec.low:g}, {spec.high:g}]"
        if not self._range_conditions:
            raise ValueError(
                f"conditions: {type(self).__name__} cannot condition on a numeric "
                f"range (column {name!r}); TabularTransformer can."
            )
        if len(bounds) != 2 or not all(
            b is None or (isinstance(b, numbers.Real) and not np.isnan(b))
            for b in bounds
        ):
            raise ValueError(
                f"conditions: column {name!r} takes a range (low, high) of numbers "
                f"or None; got {bounds!r}."
            )
        low = spec.low if bounds[0] is None else float(bounds[0])
        high = spec.high if bounds[1] is None else float(bounds[1])
        if low > high:
            raise ValueError(
                f"conditions: column {name!r} has low > high in {bounds!r}."
            )
        if high < spec.low or low > spec.high:
            raise ValueError(
                f"conditions: the range {bounds!r} of column {name!r} lies outside "
                f"the training range {seen}."
            )
        low, high = max(low, spec.low), min(high, spec.high)
        if spec.step is not None:  # the values the decoding can give
            low = np.ceil(low / spec.step - 1e-9) * spec.step
            high = np.floor(high / spec.step + 1e-9) * spec.step
            if low > high:
                raise ValueError(
                    f"conditions: no value of column {name!r} (in steps of "
                    f"{spec.step:g}) lies in the range {bounds!r}."
                )
        return RangeCondition(name, float(low), float(high))


def _slot(spec, value):
    """The slot of a categorical column that encodes ``value``, and the
    training value itself (as the table holds it)."""
    if np.ndim(value) != 0:
        raise ValueError(
            f"conditions: column {spec.name!r} takes a single value; got {value!r}."
        )
    if pd.isna(value):
        if spec.has_missing:
            return len(spec.slots) - 1, value
    else:
        found = pd.Index(spec.categories).get_indexer([value])[0]
        if found >= 0:
            return int(found), spec.categories[found]
        if spec.rare_values is not None:
            found = pd.Index(spec.rare_values).get_indexer([value])[0]
            if found >= 0:
                return len(spec.categories), spec.rare_values[found]  # the rare slot
    raise ValueError(
        f"conditions: {value!r} was never seen in column {spec.name!r} "
        f"(values include {list(spec.categories[:10])})."
    )


def check_condition_mapping(conditions):
    """``conditions`` as given to ``sample``: a dict ``{column: value}`` (or
    None, read as none); anything else is a TypeError."""
    if conditions is None:
        return {}
    if not isinstance(conditions, Mapping):
        raise TypeError(
            f"conditions must be a dict {{column: value}}; got "
            f"{type(conditions).__name__}."
        )
    return conditions


class _Format:
    """How the caller passed a table, to give results back the same way."""

    def __init__(self, kind, dtype=None):
        self.kind, self.dtype = kind, dtype

    def restore(self, table):
        if self.kind == "dataframe":
            return table
        array = table.to_numpy(dtype=self.dtype)
        return array.tolist() if self.kind == "list" else array


class _SamplePlan:
    """What every chunk of a :meth:`TabularGenerator.sample_to` call shares."""

    def __init__(self, labels, n_samples, chunk_size, conditions, stream):
        self.labels, self.n_samples, self.chunk_size = labels, n_samples, chunk_size
        self.conditions, self.stream = conditions, stream


class _LabelPlan:
    """The labels of the rows of a :meth:`TabularGenerator.sample_to` call,
    chunk by chunk: None (drawn), one label, one per row, or ``{label: n}``."""

    def __init__(self, generator, n_samples, y):
        self.y, self.counts = y, None
        if isinstance(y, Mapping):
            if generator.target_type_ != "classes":
                generator._label_indices(0, y)  # the error for no classes
            counts = [check_count(c, f"y[{k!r}]") for k, c in y.items()]
            if sum(counts) != n_samples:
                raise ValueError(
                    f"y asks for {sum(counts)} rows in all (a dict of counts), "
                    f"but n_samples={n_samples}."
                )
            self.labels = list(y)
            self.ends = np.cumsum(counts)
        elif y is not None and np.ndim(y) != 0:
            self.y = np.asarray(y)
            if len(self.y) != n_samples:
                raise ValueError(
                    f"y must be a single label, a dict of counts or have one "
                    f"label per row (n_samples={n_samples}); got {len(y)} labels."
                )

    def chunk(self, start, size):
        if isinstance(self.y, Mapping):
            rows = np.arange(start, start + size)
            which = np.searchsorted(self.ends, rows, side="right")
            return np.asarray(self.labels, dtype=object)[which]
        if self.y is None or np.ndim(self.y) == 0:
            return self.y
        return self.y[start : start + size]

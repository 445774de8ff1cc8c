"""AugmentedClassifier: a classifier trained on its rows plus the amount (and
weight) of synthetic rows that inner cross-validation finds best for it, none
included."""

import numbers
import time
import warnings

import numpy as np
import pandas as pd
from imblearn.utils import check_sampling_strategy
from scipy import sparse
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, has_fit_parameter

from .base import added_counts

BALANCE = "balance"


def _estimator_has(attr):
    def check(self):
        fitted = getattr(self, "estimator_", None)
        return hasattr(self.estimator if fitted is None else fitted, attr)

    return check


class AugmentedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier trained on its rows plus the synthetic rows that help it.

    How many synthetic rows help depends on the data, its size and the
    classifier: on some tables balancing the classes lifts balanced accuracy,
    on others any synthetic row lowers it. This meta-estimator chooses the
    amount, and the weight the synthetic rows get in the classifier's fit, by
    an inner cross-validation on the training rows, with the classifier being
    fitted: in every fold the generator is fitted once on the training part,
    every candidate (an amount of its rows and a weight for them) is added,
    the classifier is fitted on each set and scored on the held-out part
    (real rows only). "No synthetic rows" (amount 0) is kept unless another
    candidate beats it consistently: in more than ``win_share`` of the folds
    (a majority by default), on average by more than ``margin``, and by more
    than ``min_t`` standard errors of its fold gains (a paired t statistic
    across the folds); of the candidates that do, the one of the best mean
    score wins. The generator is then fitted on all the rows and the
    classifier on them plus the chosen synthetic rows. Prediction never sees
    synthetic rows.

    The search costs ``n_splits`` generator fits and ``n_splits`` classifier
    fits per candidate, plus one final fit of each (none of the generator
    when 0 wins); ``cv_results_`` and ``search_seconds_`` report it.

    Parameters
    ----------
    estimator : classifier
        The classifier to fit (cloned), any scikit-learn classifier or
        pipeline that takes the rows the generator returns.
    generator : generator
        An unfitted generator of this package (cloned), say
        ``TabularVAE(random_state=0)``; its ``sampling_strategy`` says what
        "balance" means.
    amounts : list of 0, "balance" and floats >= 1, default=(0, "balance")
        The candidate amounts of synthetic rows: 0 for none, ``"balance"`` for
        the rows the generator's ``sampling_strategy`` asks for (every class
        topped up to the majority with ``"auto"``), a float ``f`` for those
        and rows in the balanced class proportions until the training set is
        ``f`` times its size (the generator's ``enlarge``). Leaving 0 out
        forces augmentation. Doubling (2.0) is not a default candidate: in
        the small-data benchmark it won inner folds by noise more often than
        it helped on the test rows (``docs/small_data.rst``).
    synthetic_weights : "auto" or list of floats > 0, default="auto"
        The candidate weights of the synthetic rows in the classifier's fit
        (the real rows weigh 1), tried with every non-zero amount. They are
        passed as ``sample_weight`` to the estimator's ``fit``, or to the
        final step of a :class:`~sklearn.pipeline.Pipeline` as
        ``<step>__sample_weight`` (with metadata routing enabled, as
        ``sample_weight``, routed as the estimator requests it). ``"auto"``:
        ``[1.0, 0.5]`` where the estimator's fit takes ``sample_weight``,
        ``[1.0]`` where it does not; a weight other than 1 for an estimator
        that does not take ``sample_weight`` is an error.
    cv : int, cross-validation generator or iterable, default=5
        The inner folds, as in :func:`~sklearn.model_selection.cross_validate`
        (an int is a :class:`~sklearn.model_selection.StratifiedKFold`). Every
        training fold needs two rows of every class for the generator to
        learn it; with fewer, the search is skipped with a warning and no
        synthetic rows are added.
    scoring : str, callable or None, default="balanced_accuracy"
        What the search maximises on the held-out real rows, as in
        :func:`~sklearn.model_selection.cross_validate`; None uses the
        estimator's ``score`` (accuracy). Balanced accuracy by default:
        over-sampling is meant for the minority classes, which accuracy
        hardly weighs.
    margin : float >= 0, default=0.0
        How much a candidate's mean score must beat that of no synthetic
        rows to be chosen.
    win_share : float in [0, 1), default=0.5
        The share of the inner folds that a candidate must beat no synthetic
        rows in (strictly more than it) to be chosen. 0.5, a majority of the
        folds, guards against a mean lifted by one lucky fold. 0 leaves the
        choice to the mean (``margin`` and ``min_t``).
    min_t : float >= 0, default=0.5
        How many standard errors of its fold gains (their standard deviation
        over the square root of the number of folds) a candidate's mean gain
        over no synthetic rows must exceed: a paired t statistic across the
        folds. Five folds of a small table cannot tell a gain of 0.01 from
        noise, so this trades lift for safety. With the default candidates,
        0.5 kept 97 to 98.5% of the cells of the small-data benchmark
        (``docs/small_data.rst``; three pairs of seeds) not below real rows
        alone and beat SMOTE in 42 to 55% of them, against 96 to 100% and 35
        to 43% for 2 with doubling among the candidates (the default
        before); 0 (the best mean) lets 11 to 13% of the cells fall below
        real rows. With a single fold there is no standard error and only
        ``margin`` and ``win_share`` apply.

    Attributes
    ----------
    estimator_ : classifier
        The classifier fitted on the rows and the chosen synthetic rows.
    generator_ : generator or None
        The generator fitted on all the rows (None when 0 wins).
    amount_ : 0, "balance" or float
        The chosen amount.
    weight_ : float or None
        The chosen weight of the synthetic rows (None when 0 wins).
    synthetic_weights_ : list of float
        The candidate weights tried (``synthetic_weights`` resolved).
    n_synthetic_ : int
        Synthetic rows the final classifier was trained with.
    cv_results_ : dict of ndarray or None
        One entry per candidate: ``amount``, ``weight`` (NaN for 0),
        ``mean_test_score``, ``std_test_score``,
        ``split{k}_test_score``, ``rank_test_score``, ``mean_fit_time`` (of
        the classifier), ``mean_generator_fit_time`` (of the generator, one
        fit per fold shared by every non-zero amount) and ``n_synthetic``
        (mean per training fold); a DataFrame's worth, one row per candidate.
        None when the search was skipped.
    search_seconds_ : float
        Wall time of the search: every fit of the inner folds (not the final
        fits).
    classes_ : ndarray
        The class labels.
    n_features_in_ : int
        Number of features seen in fit (from ``estimator_``).

    See Also
    --------
    TabularVAE, TabularGAN : generators to pass.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from augment import AugmentedClassifier, TabularVAE
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> model = AugmentedClassifier(
    ...     LogisticRegression(max_iter=1000),
    ...     TabularVAE(epochs=5, random_state=0),
    ...     amounts=[0, "balance"],
    ...     cv=3,
    ... ).fit(X[:60], y[:60])
    >>> model.amount_ in (0, "balance")
    True
    >>> list(model.cv_results_["amount"])
    [0, 'balance', 'balance']
    >>> model.cv_results_["weight"].tolist()
    [nan, 1.0, 0.5]
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "generator": [HasMethods(["fit", "sample"])],
        "amounts": ["array-like"],
        "synthetic_weights": [StrOptions({"auto"}), "array-like"],
        "cv": ["cv_object"],
        "scoring": [None, StrOptions(set(get_scorer_names())), callable],
        "margin": [Interval(numbers.Real, 0, None, closed="left")],
        "win_share": [Interval(numbers.Real, 0, 1, closed="left")],
        "min_t": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        estimator,
        generator,
        *,
        amounts=(0, BALANCE),
        synthetic_weights="auto",
        cv=5,
        scoring="balanced_accuracy",
        margin=0.0,
        win_share=0.5,
        min_t=0.5,
    ):
        self.estimator = estimator
        self.generator = generator
        self.amounts = amounts
        self.synthetic_weights = synthetic_weights
        self.cv = cv
        self.scoring = scoring
        self.margin = margin
        self.win_share = win_share
        self.min_t = min_t

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Choose the amount of synthetic rows by inner cross-validation, then
        fit the generator and the classifier on all the rows.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The training rows, as the estimator and the generator take them.
        y : array-like of shape (n_samples,)
            The class labels.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        if sparse.issparse(X):
            raise TypeError(
                "Sparse input is not supported: the generators learn dense rows; "
                "pass X.toarray() or a DataFrame."
            )
        amounts = _check_amounts(self.amounts)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        weight_key = _weight_key(self.estimator)
        weights = _check_weights(self.synthetic_weights, weight_key, self.estimator)
        self.synthetic_weights_ = weights
        candidates = [
            (a, w) for a in amounts for w in ([np.nan] if a == 0 else weights)
        ]
        # the estimator's own errors first, before any generator is fitted
        real = clone(self.estimator).fit(X, y)
        if not isinstance(X, pd.DataFrame):  # lists and array-likes: folds index it
            X = np.asarray(X)
        scorer = check_scoring(real, scoring=self.scoring)
        cv = check_cv(self.cv, y, classifier=True)
        start = time.perf_counter()
        splits = self._splits(cv, X, y)
        self.cv_results_ = None
        chosen = (0, np.nan)
        if splits is not None and amounts != [0]:
            self.cv_results_ = self._search(
                X, y, splits, candidates, scorer, weight_key
            )
            chosen = self._choose(self.cv_results_)
        self.search_seconds_ = time.perf_counter() - start
        self.amount_, self.generator_, self.n_synthetic_ = chosen[0], None, 0
        self.weight_ = None if chosen[0] == 0 else float(chosen[1])
        if chosen[0] == 0:
            self.estimator_ = real
        else:
            self.generator_ = clone(self.generator).fit(X, y)
            self.estimator_, self.n_synthetic_ = _fit_augmented(
                self.estimator, self.generator_, X, y, chosen, weight_key
            )
        return self

    def _splits(self, cv, X, y):
        """The inner folds, or None (with a warning) when a training fold has
        fewer than two rows of a class."""
        classes = np.unique(y)
        with warnings.catch_warnings():
            # StratifiedKFold warns when a class has fewer rows than folds:
            # the check below says what that means here
            warnings.filterwarnings("ignore", "The least populated class")
            splits = list(cv.split(X, y))
        for train, _ in splits:
            counts = pd.Series(y[train]).value_counts().reindex(classes, fill_value=0)
            if counts.min() < 2:
                warnings.warn(
                    f"A training fold of cv={self.cv!r} has {counts.min()} row(s) "
                    f"of class {counts.idxmin()!r}: the generator needs two rows "
                    "of every class in every fold to be tried. No synthetic rows "
                    "are added; use fewer folds (cv) to search.",
                    UserWarning,
                    stacklevel=3,
                )
                return None
        return splits

    def _search(self, X, y, splits, candidates, scorer, weight_key):
        amounts = np.array([a for a, _ in candidates], dtype=object)
        scores = np.zeros((len(candidates), len(splits)))
        fit_times = np.zeros_like(scores)
        sizes = np.zeros_like(scores)
        generator_time = 0.0
        for k, (train, test) in enumerate(splits):
            X_train, y_train = _safe_indexing(X, train), y[train]
            X_test, y_test = _safe_indexing(X, test), y[test]
            generator = None
            if any(a != 0 for a in amounts):
                wall = time.perf_counter()
                generator = clone(self.generator).fit(X_train, y_train)
                generator_time += time.perf_counter() - wall
            synthetic = {}  # amount -> rows, shared by the weights
            for i, candidate in enumerate(candidates):
                wall = time.perf_counter()
                model, sizes[i, k] = _fit_augmented(
                    self.estimator,
                    generator,
                    X_train,
                    y_train,
                    candidate,
                    weight_key,
                    synthetic,
                )
                fit_times[i, k] = time.perf_counter() - wall
                scores[i, k] = scorer(model, X_test, y_test)
        mean = scores.mean(axis=1)
        order = np.argsort(-mean, kind="stable")
        rank = np.empty(len(candidates), dtype=np.int32)
        rank[order] = np.arange(1, len(candidates) + 1)
        results = {
            "amount": amounts,
            "weight": np.array([w for _, w in candidates], dtype=float),
        }
        for k in range(len(splits)):
            results[f"split{k}_test_score"] = scores[:, k]
        results.update(
            mean_test_score=mean,
            std_test_score=scores.std(axis=1),
            rank_test_score=rank,
            mean_fit_time=fit_times.mean(axis=1),
            n_synthetic=sizes.mean(axis=1),
            # the folds' generator fits, shared by the candidates that use them
            mean_generator_fit_time=np.where(
                amounts == 0, 0.0, generator_time / len(splits)
            ),
        )
        return results

    def _choose(self, results):
        """``(amount, weight)``: the candidate :func:`_clear_winner` picks over
        no synthetic rows; ``(0, nan)`` if none clears it (the best mean when
        0 is not a candidate)."""
        amounts, weights = list(results["amount"]), results["weight"]
        if 0 not in amounts:
            best = int(np.argmax(results["mean_test_score"]))
            return amounts[best], weights[best]
        splits = np.column_stack(
            [v for k, v in results.items() if k.startswith("split")]
        )
        best = _clear_winner(
            splits,
            amounts.index(0),
            margin=self.margin,
            win_share=self.win_share,
            min_t=self.min_t,
        )
        return (0, np.nan) if amounts[best] == 0 else (amounts[best], weights[best])

    # ---------------------------------------------------------- delegation
    @property
    def classes_(self):
        check_is_fitted(self)
        return self.estimator_.classes_

    @property
    def n_features_in_(self):
        check_is_fitted(self)
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        check_is_fitted(self)
        return self.estimator_.feature_names_in_

    def predict(self, X):
        """Predict classes with the fitted classifier (see ``estimator``).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the fitted classifier.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from the fitted classifier.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the fitted classifier.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray
        """
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    def score(self, X, y, sample_weight=None):
        """The fitted classifier's ``score`` on ``(X, y)`` (accuracy for most).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        params = {} if sample_weight is None else {"sample_weight": sample_weight}
        return self.estimator_.score(X, y, **params)

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags = inner.input_tags
        tags.input_tags.sparse = False  # the generators take dense rows
        tags.classifier_tags = inner.classifier_tags
        return tags


def _check_amounts(amounts):
    amounts = list(amounts)
    for amount in amounts:
        number = isinstance(amount, numbers.Real) and not isinstance(amount, bool)
        if not (
            (isinstance(amount, str) and amount == BALANCE)
            or (number and (amount == 0 or amount >= 1))
        ):
            raise ValueError(
                'amounts must hold 0, "balance" or floats >= 1 (enlarge factors); '
                f"got {amount!r}."
            )
    if not amounts:
        raise ValueError("amounts must hold at least one amount; got none.")
    return amounts


def _check_weights(weights, key, estimator):
    """The candidate weights of synthetic rows, a list of floats > 0."""
    if isinstance(weights, str):  # "auto" (the constraints allow no other)
        return [1.0, 0.5] if key is not None else [1.0]
    weights = list(weights)
    if not weights:
        raise ValueError("synthetic_weights must hold at least one weight; got none.")
    for weight in weights:
        number = isinstance(weight, numbers.Real) and not isinstance(weight, bool)
        if not (number and np.isfinite(weight) and weight > 0):
            raise ValueError(f"synthetic_weights must hold floats > 0; got {weight!r}.")
    if key is None and any(w != 1 for w in weights):
        raise ValueError(
            f"synthetic_weights={weights!r} needs an estimator whose fit takes "
            f"sample_weight (the final step of a Pipeline); "
            f"{type(_final_step(estimator)).__name__}.fit does not. Use "
            "synthetic_weights=[1.0] or 'auto'."
        )
    return [float(w) for w in weights]


def _final_step(estimator):
    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator


def _weight_key(estimator):
    """The fit parameter that carries sample weights to ``estimator``'s final
    step (``sample_weight``, ``<step>__sample_weight`` in a pipeline), or
    None where it takes none. With metadata routing enabled, ``sample_weight``:
    the estimator routes it as requested."""
    if _routing_enabled():
        return "sample_weight"
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        if last is None or last == "passthrough":
            return None
        key = _weight_key(last)
        return None if key is None else f"{name}__{key}"
    return "sample_weight" if has_fit_parameter(estimator, "sample_weight") else None


def _fit_augmented(estimator, generator, X, y, candidate, key, cache=None):
    """``(fitted clone of estimator, n_synthetic)``: fitted on the rows plus
    ``candidate = (amount, weight)`` synthetic rows; ``cache`` (a dict) shares
    the sampled rows of an amount between weights."""
    amount, weight = candidate
    if cache is not None and amount in cache:
        X_fit, y_fit, n = cache[amount]
    else:
        X_fit, y_fit, n = _augment(generator, X, y, amount)
        if cache is not None:
            cache[amount] = X_fit, y_fit, n
    params = {}
    if n and weight != 1:
        params[key] = np.r_[np.ones(len(y)), np.full(n, weight)]
    return clone(estimator).fit(X_fit, y_fit, **params), n


def _augment(generator, X, y, amount):
    """``(X, y, n_synthetic)``: the rows plus ``amount`` synthetic ones."""
    if amount == 0:
        return X, y, 0
    strategy = check_sampling_strategy(generator.sampling_strategy, y, "over-sampling")
    enlarge = None if amount == BALANCE else amount
    added = added_counts(y, strategy, enlarge)
    labels = np.repeat(np.unique(y), added)
    if not len(labels):
        return X, y, 0
    X_new, y_new = generator.sample(len(labels), y=labels)
    if isinstance(X, pd.DataFrame):
        X_out = pd.concat([X, X_new], ignore_index=True)
    else:
        X_out = np.concatenate([np.asarray(X), np.asarray(X_new)])
    return X_out, np.concatenate([y, np.asarray(y_new)]), len(labels)


def _clear_winner(split_scores, baseline, *, margin=0.0, win_share=0.5, min_t=0.5):
    """The row of ``split_scores`` (candidates by inner folds) to keep: of
    the candidates that beat row ``baseline`` in more than ``win_share`` of
    the folds, on average by more than ``margin`` and by more than ``min_t``
    standard errors of their fold gains, the one of the best mean score;
    ``baseline`` if none does. The one place this rule lives: the benchmark
    replays it (benchmarks/small_data.py)."""
    split_scores = np.asarray(split_scores, dtype=float)
    gains = split_scores - split_scores[baseline]
    mean = gains.mean(axis=1)
    n = gains.shape[1]
    error = gains.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else 0.0
    clears = (
        (mean > margin)
        & ((gains > 0).mean(axis=1) > win_share)
        & (mean > min_t * error)
    )
    if not clears.any():
        return baseline
    return int(np.argmax(np.where(clears, split_scores.mean(axis=1), -np.inf)))

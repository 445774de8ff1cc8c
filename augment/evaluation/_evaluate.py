"""``evaluate``: the one entry point, for tables and for images."""

import numbers
import time
from collections.abc import Hashable

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, Options, validate_params
from threadpoolctl import threadpool_limits

from . import _data, _fidelity, _privacy, _utility
from ._cnn import SmallCNN
from ._report import EvaluationReport, scores_frame


@validate_params(
    {
        # the data are checked by the data checks, whose messages say what
        # was expected without printing the whole array
        "real": "no_validation",
        "synthetic": "no_validation",
        "target": [None, Hashable],
        "holdout": "no_validation",
        "scoring": [None, str],
        "subsample": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "channels_last": [None, "boolean"],
        "random_state": [
            None,
            Interval(numbers.Integral, 0, None, closed="left"),
            np.random.Generator,
        ],
        "n_jobs": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Options(numbers.Integral, {-1}),
        ],
    },
    prefer_skip_nested_validation=True,
)
def evaluate(
    real,
    synthetic,
    *,
    target=None,
    holdout=None,
    scoring=None,
    subsample=5_000,
    channels_last=None,
    random_state=None,
    n_jobs=1,
):
    """Measure how close, how useful and how private synthetic data is.

    Parameters
    ----------
    real : pandas.DataFrame or tuple of (X, y)
        The real data the generator learnt from: a table, or images ``X`` of
        shape (N, H, W), (N, C, H, W) or (N, H, W, C), uint8 or float in
        [0, 1], with their class labels ``y``.
    synthetic : pandas.DataFrame or tuple of (X, y)
        The generated data, in the same form and with the same columns (in
        any order) or image shape.
    target : str, default=None
        Tables: the column a model would predict. It enables the utility
        figures; with categories (or few distinct numbers) it is a
        classification, else a regression. Images are always classified by
        their labels.
    holdout : pandas.DataFrame or tuple of (X, y), default=None
        Real data the generator never saw. It is the test set of the utility
        figures and the reference of ``dcr_share``, ``mia_auc`` and
        ``dcr_median_holdout``: without it those are skipped.
    scoring : str, default=None
        scikit-learn scorer for the utility figures. None:
        ``"balanced_accuracy"`` for classification, ``"r2"`` for regression.
    subsample : int or None, default=5000
        At most this many rows of each table feed the column pair scores, the
        privacy queries and the plots, so that large tables take seconds.
        Column shapes, exact copies and the utility models use every row.
        None: every row everywhere.
    channels_last : bool or None, default=None
        Images only: whether 4-d images are ``(N, H, W, C)``. None tells from
        the shape, as the image generators do (the axis of 1, 3 or 4 entries
        is the channels), and raises when both axes could be.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the subsamples and the models.
    n_jobs : int, default=1
        Threads of the models and the distance computations; -1 for all
        cores. OpenMP threads wait for each other by spinning: on a small or
        busy machine (or next to other jobs, as under ``pytest -n``) extra
        threads cost more than they gain at the sizes evaluated here.

    Returns
    -------
    EvaluationReport
        ``.scores`` (a tidy frame, one row per figure), ``.summary()`` and
        ``.to_html(path)``.

    Notes
    -----
    Tables: ``fidelity``, ``column_shapes`` and ``column_pairs`` follow
    SDMetrics' QualityReport (see the user guide for the small differences);
    ``detection`` is a classifier two-sample test (a HistGradientBoosting
    classifier with native categories tells real from synthetic rows, on at
    most ``subsample`` rows of each: ``1 - max(0, 2 AUC - 1)`` of its 3-fold
    ROC AUC, 1 when it cannot tell them apart); ``rule_violations`` is the
    share of synthetic rows breaking a rule between columns found in the
    real table (:mod:`augment.tabular.rules`), with one row per rule;
    ``tstr``, ``trtr`` and ``augmentation_lift`` use a
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (or regressor).
    Images: ``fidelity`` is the mean over classes of ``class_accuracy``, the
    accuracy on synthetic images of a small CNN trained on the real ones,
    whose features also give ``frechet_distance``; the utility models are the
    same CNN. Privacy figures compare rows (or flattened images) by Euclidean
    distance; tables are one-hot encoded with numbers scaled by their real
    range and missing values as a value of their own.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from augment import evaluate
    >>> iris = load_iris(as_frame=True).frame
    >>> train, holdout = iris.iloc[::2], iris.iloc[1::2]
    >>> noisy = train + np.random.default_rng(0).normal(0, 0.1, train.shape)
    >>> noisy["target"] = train["target"]
    >>> report = evaluate(train, noisy, target="target", holdout=holdout,
    ...                   random_state=0)
    >>> headline = report.scores.query("column.isna()")
    >>> headline["metric"].tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['fidelity', 'column_shapes', 'column_pairs', 'detection',
     'rule_violations', 'trtr', 'tstr', 'augmentation_lift',
     'exact_copy_share', 'dcr_share', 'dcr_median',
     'dcr_median_holdout', 'nndr', 'mia_auc']
    """
    start = time.perf_counter()
    rng = np.random.default_rng(random_state)
    info = {
        "target": target,
        "task": None,
        "scoring": None,
        "subsample": subsample,
        "random_state": random_state,
        "notes": [],
    }
    with threadpool_limits(None if n_jobs == -1 else n_jobs, user_api="openmp"):
        if isinstance(real, pd.DataFrame):
            rows, details, plot_data = _evaluate_table(
                real, synthetic, holdout, target, scoring, subsample, rng, info
            )
        elif target is not None:
            raise ValueError(
                "target is for tables; images are classified by their labels y."
            )
        else:
            rows, details, plot_data = _evaluate_images(
                channels_last, real, synthetic, holdout, scoring, subsample, rng, info
            )
    if holdout is None:
        info["notes"].append(
            "No holdout: utility, dcr_share and mia_auc need real data the "
            "generator never saw (holdout=)."
        )
    info["seconds"] = time.perf_counter() - start
    return EvaluationReport(scores_frame(rows), details, info, plot_data)


def _seed(rng):
    return int(rng.integers(2**31 - 1))


def _headline(figures):
    """Rows of ``scores`` for figures about the whole data set."""
    return [(name, None, None, value) for name, value in figures.items()]


def _evaluate_table(real, synthetic, holdout, target, scoring, subsample, rng, info):
    frames, kinds = _data.check_tables(real, synthetic, holdout, target)
    info["data"] = "table"
    info["n_rows"] = {name: 0 if f is None else len(f) for name, f in frames.items()}
    real_sample = _data.subsample(frames["real"], subsample, rng)
    synthetic_sample = _data.subsample(frames["synthetic"], subsample, rng)
    if subsample is not None and max(info["n_rows"].values()) > subsample:
        info["notes"].append(
            f"Column pairs, privacy queries and plots use at most {subsample:,} rows "
            f"of each table, drawn with random_state={info['random_state']!r}."
        )

    shapes = _fidelity.column_shapes(frames["real"], frames["synthetic"], kinds)
    # pairs on the subsample: every pair costs a pass over the rows
    pairs = _fidelity.column_pairs(real_sample, synthetic_sample, kinds)
    overall = {
        "column_shapes": shapes.mean(),
        "column_pairs": pairs.loc[pairs["related"], "score"].mean(),
    }
    # as SDMetrics' overall quality score: the mean of the two properties
    overall = {"fidelity": np.nanmean(list(overall.values())), **overall}
    if not pairs["related"].any():
        info["notes"].append(
            "No column pair is related in the real data (|r| > 0.5 or Cramer's "
            "V > 0.3): column_pairs is NaN and fidelity is the column shapes alone."
        )
    overall["detection"] = _fidelity.detection(
        real_sample, synthetic_sample, kinds, rng
    )
    per_rule, overall["rule_violations"] = _fidelity.rule_violations(
        frames["real"], frames["synthetic"], rng
    )
    if per_rule.empty:
        info["notes"].append("No rule between columns was found in the real table.")
    rows = _headline(overall)
    rows += [("rule_violations", rule, None, s) for rule, s in per_rule.items()]
    rows += [("column_shapes", c, None, s) for c, s in shapes.items()]
    related = pairs[pairs["related"]]
    rows += [
        ("column_pairs", a, b, s)
        for a, b, s in zip(related["column"], related["column_2"], related["score"])
    ]

    rows += _table_utility(frames, kinds, target, scoring, rng, info)

    encoded = _privacy.encode(frames, kinds)
    privacy, distances = _privacy.privacy(
        encoded["real"], encoded["synthetic"], encoded["holdout"], subsample, rng
    )
    rows += _headline(privacy)
    plot_data = {
        "real": real_sample,
        "synthetic": synthetic_sample,
        "kinds": kinds,
        "distances": distances,
        "n_plotted": _plotted(info["n_rows"], subsample),
    }
    return rows, {"column_pairs": pairs}, plot_data


def _plotted(n_rows, subsample):
    counts = [
        min(n_rows[name], subsample or n_rows[name]) for name in ("real", "synthetic")
    ]
    return f"{counts[0]:,} real and {counts[1]:,} synthetic rows"


def _table_utility(frames, kinds, target, scoring, rng, info):
    if target is None:
        info["notes"].append("No target: the utility figures need target=.")
        return []
    classification = _utility.is_classification(frames["real"][target], kinds[target])
    info["task"] = "classification" if classification else "regression"
    info["scoring"] = scoring or ("balanced_accuracy" if classification else "r2")
    if frames["holdout"] is None:
        return []
    if len(kinds) == 1:
        info["notes"].append(
            "The table has no column but the target: no utility figures."
        )
        return []
    inputs, categorical = _utility.table_model_inputs(
        frames, kinds, target, classification
    )
    make_model = _utility.table_model(classification, categorical, _seed(rng))
    figures = _utility.utility(
        make_model,
        inputs["real"],
        inputs["synthetic"],
        inputs["holdout"],
        info["scoring"],
    )
    return _headline(figures)


def _evaluate_images(
    channels_last, real, synthetic, holdout, scoring, subsample, rng, info
):
    images = _data.check_images(real, synthetic, holdout, channels_last)
    info.update(
        data="images", task="classification", scoring=scoring or "balanced_accuracy"
    )
    info["n_rows"] = {name: 0 if p is None else len(p[0]) for name, p in images.items()}
    (X_real, y_real), (X_syn, y_syn) = images["real"], images["synthetic"]

    # one classifier trained on real images: the eye of fidelity, and trtr
    classifier = SmallCNN(random_state=_seed(rng)).fit(X_real, y_real)
    correct = pd.Series(classifier.predict(X_syn) == y_syn).groupby(y_syn).mean()
    rows = [("fidelity", None, None, correct.mean())]
    rows += [("class_accuracy", label, None, value) for label, value in correct.items()]

    def features(X):
        return classifier.features(_data.subsample(X, subsample, rng))

    real_features = features(X_real)
    frechet = {"frechet_distance": features(X_syn)}
    if images["holdout"] is not None:
        frechet["frechet_distance_holdout"] = features(images["holdout"][0])
    rows += _headline(
        {
            name: _fidelity.frechet_distance(real_features, f)
            for name, f in frechet.items()
        }
    )
    if images["holdout"] is not None:
        seed = _seed(rng)
        figures = _utility.utility(
            lambda: SmallCNN(random_state=seed),
            images["real"],
            images["synthetic"],
            images["holdout"],
            info["scoring"],
            real_model=classifier,
        )
        rows += _headline(figures)

    flat = {
        name: None if p is None else p[0].reshape(len(p[0]), -1)
        for name, p in images.items()
    }
    privacy, distances = _privacy.privacy(
        flat["real"], flat["synthetic"], flat["holdout"], subsample, rng
    )
    rows += _headline(privacy)
    classes = np.unique(np.concatenate([y_real, y_syn]))
    plot_data = {
        "real": _first_of_each_class(X_real, y_real),
        "synthetic": _first_of_each_class(X_syn, y_syn),
        "classes": classes,
        "distances": distances,
    }
    return rows, {}, plot_data


def _first_of_each_class(X, y, n=8):
    """The first ``n`` images of each class: all the report shows of them."""
    keep = pd.Series(y).groupby(y).cumcount().to_numpy() < n
    return X[keep], y[keep]

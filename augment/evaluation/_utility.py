"""Utility: does a model trained on the synthetic data work on real data?

One model class, three training sets, one test set (the holdout):
``trtr`` trains on the real rows, ``tstr`` on the synthetic ones, and the
``augmentation_lift`` is the score of the real plus synthetic rows minus
``trtr``. Tables use a HistGradientBoosting model, images a small CNN.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import get_scorer
from sklearn.utils.multiclass import type_of_target

from ._data import as_float, shared_codes

MAX_CLASSES = 20  # more distinct numbers than this in a numeric target: regression


def is_classification(y, kind):
    """Whether a target calls for a classifier: categories, or few distinct numbers."""
    if kind != "numeric":
        return kind == "categorical"
    y = y.dropna().to_numpy(dtype=float)
    n_values = len(np.unique(y))
    return type_of_target(y) in ("binary", "multiclass") and n_values <= MAX_CLASSES


def utility(make_model, real, synthetic, holdout, scoring, real_model=None):
    """``trtr``, ``tstr`` and ``augmentation_lift``, scored on the holdout.

    Parameters
    ----------
    make_model : callable
        Returns a fresh unfitted estimator.
    real, synthetic, holdout : tuple of (X, y)
        Arrays or frames; ``real`` and ``synthetic`` are concatenated for the
        augmented model.
    scoring : str
        A scikit-learn scorer name.
    real_model : estimator, default=None
        A model already fitted on ``real``, to save fitting it again.
    """
    scorer = get_scorer(scoring)

    def score(X, y, model=None):
        with warnings.catch_warnings():
            # e.g. a class the synthetic data lacks: the score says it
            warnings.simplefilter("ignore", UserWarning)
            return scorer(model or make_model().fit(X, y), *holdout)

    both = [_concat(a, b) for a, b in zip(real, synthetic)]
    trtr = score(*real, model=real_model)
    return {
        "trtr": trtr,
        "tstr": score(*synthetic),
        "augmentation_lift": score(*both) - trtr,
    }


def _concat(a, b):
    if isinstance(a, pd.DataFrame | pd.Series):
        return pd.concat([a, b], ignore_index=True)
    return np.concatenate([a, b])


def table_model_inputs(frames, kinds, target, classification):
    """``(X, y)`` per frame for a HistGradientBoosting model.

    Categories become shared integer codes (missing as NaN, which the model
    handles natively) marked as categorical, unless they have more values than
    the model's 255 bins; datetimes become numbers. Rows with a missing target
    are dropped.

    Returns
    -------
    inputs : dict
        Frame name -> ``(X, y)``.
    categorical : ndarray of bool
        Which columns of ``X`` are categorical.
    """
    names = [name for name, frame in frames.items() if frame is not None]
    features = [c for c in kinds if c != target]
    columns, categorical = {n: [] for n in names}, []
    for column in features:
        if kinds[column] == "categorical":
            codes, n_values = shared_codes([frames[n][column] for n in names])
            parts = [np.where(code < 0, np.nan, code) for code in codes]
            categorical.append(n_values <= 255)
        else:
            parts = [as_float(frames[n][column], kinds[column]) for n in names]
            categorical.append(False)
        for name, part in zip(names, parts):
            columns[name].append(part)

    inputs = {}
    for name in names:
        X = (
            np.column_stack(columns[name])
            if features
            else np.zeros((len(frames[name]), 0))
        )
        y = frames[name][target]
        keep = y.notna().to_numpy()
        if kinds[target] == "categorical":
            # as strings: scikit-learn reads objects other than str (booleans
            # of a nullable column, say) as an unknown kind of target
            y = y[keep].astype(str).to_numpy(dtype=object)
        else:
            y = as_float(y[keep], kinds[target])
        inputs[name] = (X[keep], y)
    return inputs, np.array(categorical, dtype=bool)


def table_model(classification, categorical, random_state):
    """A factory of HistGradientBoosting models with fixed settings."""
    cls = (
        HistGradientBoostingClassifier
        if classification
        else HistGradientBoostingRegressor
    )

    def make():
        return cls(
            categorical_features=categorical if categorical.any() else None,
            random_state=random_state,
        )

    return make

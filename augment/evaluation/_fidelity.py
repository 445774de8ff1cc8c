"""Fidelity: how close the synthetic data's distribution is to the real one.

Tables follow SDMetrics' QualityReport (0.32) so that the numbers mean the
same thing: column shapes are the complement of the Kolmogorov-Smirnov
statistic (numbers, datetimes) or of the total variation distance
(categories); column pair trends are the correlation similarity
``1 - |r_real - r_synthetic| / 2`` (Pearson, two numeric columns) or the
contingency similarity (any other pair, numbers binned in 10 bins). As in
SDMetrics only the pairs related in the real data (|r| > 0.5, or Cramer's
V > 0.3) make up the ``column_pairs`` score; every pair is kept in the
details. Missing values are left out of the column shapes and correlations,
and are a value of their own in contingency tables, also as in SDMetrics.

The detection score is a classifier two-sample test: a gradient-boosting
classifier (native categories) learns to tell real rows from synthetic ones
(as many of each), and its k-fold ROC AUC gives ``1 - max(0, 2 AUC - 1)``: 1
when it cannot tell them apart, 0 when it always can. Rule violations are the
share of synthetic rows breaking each rule found in the real table
(:mod:`augment.tabular.rules`).

Images have no columns to compare: a classifier trained on the real images
tells how recognisable the synthetic ones are, class by class, and its
feature space gives a Frechet distance.
"""

import itertools

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.stats import ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from ..tabular.rules import Rules
from ._data import as_float, shared_codes

RELATED_CORRELATION = 0.5  # SDMetrics' DEFAULT_REAL_CORRELATION_THRESHOLD
RELATED_ASSOCIATION = 0.3  # SDMetrics' DEFAULT_REAL_ASSOCIATION_THRESHOLD
N_BINS = 10  # numpy's histogram_bin_edges default, as SDMetrics


# ---------------------------------------------------------------------- tables
def column_shapes(real, synthetic, kinds):
    """Per column similarity of the marginal distributions, in [0, 1].

    Returns
    -------
    pandas.Series
        Indexed by column name: ``1 - KS statistic`` for numbers and
        datetimes, ``1 - total variation distance`` for categories. NaN where
        a column has no values in either frame.
    """
    scores = {}
    for column, kind in kinds.items():
        if kind == "categorical":
            p = real[column].astype(object).value_counts(normalize=True)
            q = synthetic[column].astype(object).value_counts(normalize=True)
            tv = 0.5 * p.sub(q, fill_value=0).abs().sum()
            scores[column] = 1 - tv if len(p) and len(q) else np.nan
        else:
            a, b = as_float(real[column], kind), as_float(synthetic[column], kind)
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            # only the statistic is used: the asymptotic p-value is the cheap
            # one, and the exact one warns when it fails on large samples
            scores[column] = (
                1 - ks_2samp(a, b, method="asymp").statistic
                if len(a) and len(b)
                else np.nan
            )
    return pd.Series(scores, dtype=float)


def column_pairs(real, synthetic, kinds):
    """Trend similarity of every column pair, and whether the pair is related.

    Returns
    -------
    pandas.DataFrame
        One row per pair with ``column``, ``column_2``, ``metric``
        (``"correlation"`` or ``"contingency"``), ``score``,
        ``real`` and ``synthetic`` (Pearson's r, or Cramer's V of the real
        table), and ``related`` (the pair counts in the ``column_pairs`` score).
    """
    continuous = [c for c, kind in kinds.items() if kind != "categorical"]
    numbers_real = pd.DataFrame({c: as_float(real[c], kinds[c]) for c in continuous})
    numbers_syn = pd.DataFrame(
        {c: as_float(synthetic[c], kinds[c]) for c in continuous}
    )
    # pandas correlates pairwise-complete rows, as SDMetrics drops NaN per pair
    r_real, r_syn = numbers_real.corr(), numbers_syn.corr()
    codes = {c: _codes(real[c], synthetic[c], kinds[c]) for c in kinds}

    rows = []
    for a, b in itertools.combinations(kinds, 2):
        if a in continuous and b in continuous:
            r, s = r_real.at[a, b], r_syn.at[a, b]
            score, related = 1 - abs(r - s) / 2, abs(r) > RELATED_CORRELATION
            rows.append((a, b, "correlation", score, r, s, related))
        else:
            score, v = _contingency(codes[a], codes[b])
            rows.append(
                (a, b, "contingency", score, v, np.nan, v > RELATED_ASSOCIATION)
            )
    columns = ["column", "column_2", "metric", "score", "real", "synthetic", "related"]
    return pd.DataFrame(rows, columns=columns)  # a NaN r or V is not related


def _codes(real, synthetic, kind):
    """Shared integer codes of a column, missing values as a code of their own.

    Numbers are cut at the real column's 10 equal-width bin edges with
    ``np.digitize``, as SDMetrics does: below the real minimum, one code per
    bin, and the real maximum (or above) on its own. SDMetrics cuts each table
    at its own edges, so that a shifted synthetic column still matches; the
    real edges for both tables do not.
    """
    if kind == "categorical":
        (a_codes, b_codes), missing = shared_codes([real, synthetic])
        a_codes, b_codes = (np.where(c < 0, missing, c) for c in (a_codes, b_codes))
        return a_codes, b_codes, missing + 1
    a, b = as_float(real, kind), as_float(synthetic, kind)
    finite = a[~np.isnan(a)]
    edges = np.histogram_bin_edges(finite, N_BINS) if len(finite) else []
    missing = len(edges) + 1
    a_codes, b_codes = (
        np.where(np.isnan(x), missing, np.digitize(x, edges)) for x in (a, b)
    )
    return a_codes, b_codes, missing + 1


def _contingency(a, b):
    """Contingency similarity of two coded columns, and the real Cramer's V."""
    (a_real, a_syn, _), (b_real, b_syn, size_b) = a, b
    joint_real, joint_syn = a_real * size_b + b_real, a_syn * size_b + b_syn
    cells, index = np.unique(
        np.concatenate([joint_real, joint_syn]), return_inverse=True
    )
    counts = np.bincount(index[: len(joint_real)], minlength=len(cells))
    p = counts / len(joint_real)
    q = np.bincount(index[len(joint_real) :], minlength=len(cells)) / len(joint_syn)
    score = 1 - 0.5 * np.abs(p - q).sum()

    # Cramer's V from the non-empty cells of the real table (no continuity
    # correction, as scipy.stats.contingency.association)
    seen = counts > 0
    _, rows = np.unique(cells[seen] // size_b, return_inverse=True)
    _, cols = np.unique(cells[seen] % size_b, return_inverse=True)
    n_rows, n_cols = rows.max() + 1, cols.max() + 1
    if min(n_rows, n_cols) < 2:
        return score, np.nan
    p = p[seen]
    p_row, p_col = np.bincount(rows, p), np.bincount(cols, p)
    phi2 = (p**2 / (p_row[rows] * p_col[cols])).sum() - 1
    return score, np.sqrt(max(phi2, 0) / (min(n_rows, n_cols) - 1))


def detection(real, synthetic, kinds, rng, n_splits=3):
    """Classifier two-sample test: ``1 - max(0, 2 AUC - 1)``, in [0, 1].

    ``min(len(real), len(synthetic))`` rows of each frame (drawn with
    ``rng``) are labelled real or synthetic; a HistGradientBoosting
    classifier with native categories is scored by ROC AUC on each of
    ``n_splits`` stratified folds. NaN when there are too few rows.
    """
    n = min(len(real), len(synthetic))
    if n < n_splits:
        return np.nan
    frames = [f.iloc[np.sort(rng.permutation(len(f))[:n])] for f in (real, synthetic)]
    columns, categorical = [], []
    for column, kind in kinds.items():
        if kind == "categorical":
            codes, n_values = shared_codes([f[column] for f in frames])
            codes = np.concatenate(codes)
            columns.append(np.where(codes < 0, np.nan, codes))
            categorical.append(n_values <= 255)  # the model's bins; else codes
        else:
            columns.append(np.concatenate([as_float(f[column], kind) for f in frames]))
            categorical.append(False)
    X, y = np.column_stack(columns), np.repeat([0, 1], n)
    seed = int(rng.integers(2**31 - 1))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    aucs = []
    for train, test in folds.split(X, y):
        model = HistGradientBoostingClassifier(
            categorical_features=categorical if any(categorical) else None,
            random_state=seed,
        ).fit(X[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(X[test])[:, 1]))
    return 1 - max(0.0, 2 * float(np.mean(aucs)) - 1)


def rule_violations(real, synthetic, rng):
    """The rules found in ``real`` and the share of synthetic rows breaking
    each (a Series by the rule's text), and the share breaking any."""
    rules = Rules.fit(real, "auto", random_state=int(rng.integers(2**31 - 1)))
    broken = pd.DataFrame(
        {str(rule): rule.check(synthetic).to_numpy() for rule in rules},
        index=synthetic.index,
    )
    if broken.empty:
        return pd.Series(dtype=float), 0.0
    return broken.mean(), float(broken.any(axis=1).mean())


# ---------------------------------------------------------------------- images
def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two sets of feature vectors.

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, as the FID, but in
    the feature space of the evaluation's own classifier.
    """
    mu = a.mean(axis=0) - b.mean(axis=0)
    cov_a, cov_b = (np.atleast_2d(np.cov(x, rowvar=False)) for x in (a, b))
    # tr (S_a S_b)^(1/2) = tr (R S_b R)^(1/2) with R = S_a^(1/2): a symmetric
    # matrix, whose eigenvalues stay real even when dead features make S singular
    values, vectors = linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(0))) @ vectors.T
    middle = linalg.eigvalsh(root_a @ cov_b @ root_a)
    distance = (
        mu @ mu + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(middle.clip(0)).sum()
    )
    return max(float(distance), 0.0)  # not below 0 by rounding

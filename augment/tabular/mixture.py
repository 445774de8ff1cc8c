"""Variational Gaussian mixtures for many 1-D columns at once.

Mode-specific normalisation needs one mixture per numeric column. Fitting them
one by one with scikit-learn's ``BayesianGaussianMixture`` costs seconds per
column; here every column is fitted in the same vectorised loop of
variational-Bayes updates (a Dirichlet prior on the weights, a Normal-Gamma
prior on each mode's mean and precision), so a table with 50 numeric columns
costs about what one column does.
"""

import numpy as np
from scipy.special import digamma

# Prior strengths, on standardised columns. The small weight concentration lets
# superfluous modes die out (their weights shrink towards zero), which is what
# makes the number of modes adaptive.
_WEIGHT_CONCENTRATION = 1e-3
_MEAN_PRECISION = 1e-2
_PRECISION_SHAPE = 1.0
_PRECISION_RATE = 1e-3
_MIN_STD = 1e-3


def fit_mixtures(X, n_modes=10, max_iter=50, tol=1e-3):
    """Fit a variational Gaussian mixture to each column of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_columns)
        Values, NaN where missing (ignored). Each column should be roughly
        standardised; constant columns are allowed.
    n_modes : int
        Upper bound on the number of modes per column.
    max_iter : int
        Maximum number of variational updates.
    tol : float
        Stop when no mean moves by more than ``tol`` (in units of the column).

    Returns
    -------
    weights, means, stds : ndarrays of shape (n_columns, n_modes)
        Mixture parameters of each column. Modes that the data did not support
        have weights close to zero; callers prune them.
    """
    valid = ~np.isnan(X)
    # float32 and sufficient statistics (sums of r, r*x, r*x^2) keep each update
    # to a few passes over an (n, columns, modes) array.
    x = np.where(valid, X, 0.0).astype(np.float32)[:, :, None]  # (n, C, 1)
    x2 = x**2
    mask = valid[:, :, None].astype(np.float32)

    # Start from evenly spaced quantiles, so that each mode begins in a populated
    # region (a deterministic start: no randomness in the encoder).
    levels = np.linspace(0.0, 1.0, n_modes + 2)[1:-1]
    means = np.nanquantile(X, levels, axis=0).T  # (C, K)
    means = np.where(np.isnan(means), 0.0, means)
    log_resp = -5.0 * (x - means[None].astype(np.float32)) ** 2
    for _ in range(max_iter):
        resp = _normalise(log_resp) * mask
        # M-step: posterior parameters given responsibilities.
        counts = resp.sum(axis=0, dtype=np.float64) + 1e-10  # (C, K)
        xbar = (resp * x).sum(axis=0, dtype=np.float64) / counts
        scatter = np.maximum(
            (resp * x2).sum(axis=0, dtype=np.float64) - counts * xbar**2, 0
        )
        alpha = _WEIGHT_CONCENTRATION + counts
        beta = _MEAN_PRECISION + counts
        new_means = counts * xbar / beta
        shape = _PRECISION_SHAPE + 0.5 * counts
        rate = _PRECISION_RATE + 0.5 * (
            scatter + _MEAN_PRECISION * counts * xbar**2 / beta
        )
        # E-step: expected log weights, log precisions and squared distances.
        precision = (shape / rate).astype(np.float32)
        constant = (
            digamma(alpha)
            - digamma(alpha.sum(axis=1, keepdims=True))
            + 0.5 * (digamma(shape) - np.log(rate))
            - 0.5 / beta
        ).astype(np.float32)
        log_resp = constant - 0.5 * precision * (x - new_means.astype(np.float32)) ** 2
        converged = np.max(np.abs(new_means - means)) < tol
        means = new_means
        if converged:
            break
    weights = alpha / alpha.sum(axis=1, keepdims=True)
    stds = np.maximum(np.sqrt(rate / shape), _MIN_STD)
    return weights, means, stds


def merge_overlapping_modes(weights, means, stds):
    """Merge neighbouring modes closer than the narrower one's standard deviation.

    Variational updates prune superfluous modes only slowly: a unimodal column
    ends up split into many overlapping modes, and a column of repeated values
    into identical ones. Merging them (matching the first two moments) gives
    the mode indicator one slot per real mode.

    Parameters
    ----------
    weights, means, stds : ndarrays of shape (K,)

    Returns
    -------
    weights, means, stds : ndarrays of shape (K',), K' <= K, sorted by mean
    """
    order = np.argsort(means)
    w, m, s = list(weights[order]), list(means[order]), list(stds[order])
    i = 0
    while i < len(m) - 1:
        if abs(m[i + 1] - m[i]) < min(s[i], s[i + 1]):
            total = w[i] + w[i + 1]
            mean = (w[i] * m[i] + w[i + 1] * m[i + 1]) / total
            # within-mode plus between-mode variance: the second moment minus
            # the squared mean would cancel to 0 for narrow modes far from 0
            variance = (w[i] * s[i] ** 2 + w[i + 1] * s[i + 1] ** 2) / total
            variance += w[i] * w[i + 1] * (m[i + 1] - m[i]) ** 2 / total**2
            w[i : i + 2], m[i : i + 2] = [total], [mean]
            s[i : i + 2] = [np.sqrt(variance)]
            i = max(i - 1, 0)  # the wider mode may now reach its left neighbour
        else:
            i += 1
    return np.array(w), np.array(m), np.array(s)


def mode_log_likelihood(x, weights, means, stds):
    """Log of ``weight * N(x | mean, std)`` for every value and mode.

    Parameters
    ----------
    x : ndarray of shape (n,)
    weights, means, stds : ndarrays of shape (K,)

    Returns
    -------
    ndarray of shape (n, K)
    """
    z = (x[:, None] - means) / stds
    return np.log(weights) - np.log(stds) - 0.5 * z**2


def _normalise(log_resp):
    resp = np.exp(log_resp - log_resp.max(axis=-1, keepdims=True))
    resp /= resp.sum(axis=-1, keepdims=True)
    return resp

"""Privacy: how much the synthetic rows give away about the real training rows.

Rows are compared as vectors (:func:`encode`) by Euclidean distance. All the
figures need only the data, never the generator:

- ``exact_copy_share``: synthetic rows equal to a training row (every row).
- ``dcr_median``: median distance of a synthetic row to its closest training
  row; ``dcr_median_holdout`` is the same for the holdout rows, the distance
  at which genuinely new rows lie.
- ``dcr_share``: share of synthetic rows closer to a training row than to a
  holdout row, the two sets weighed as if equally large; about 0.5 when the
  generator learnt the distribution rather than the rows, 1 when it copies.
- ``nndr``: median ratio of the distances to the closest and the second
  closest training row; near 0 a synthetic row points at one training row.
- ``mia_auc``: ROC AUC of a membership-inference attack that calls a real row
  a training member when a synthetic row lies close to it; 0.5 is chance.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from ._data import as_float, shared_codes, subsample

# The dot-product form of the Euclidean distance leaves ~1e-8 of floating-point
# noise: rounding makes duplicates compare equal (ties count half in dcr_share).
DECIMALS = 6


def encode(frames, kinds):
    """Encode tables as rows of numbers for distances.

    Numbers and datetimes are scaled by the range of the real column (so that
    the real values span [0, 1]), categories are one-hot vectors scaled by
    ``1/sqrt(2)`` (two different categories are at distance 1, as the two
    ends of a numeric range), and a missing value is a value of its own: a
    missing number is 0 plus 1 in an indicator column, a missing category
    its own category.

    Parameters
    ----------
    frames : dict of str to pandas.DataFrame or None
        Must hold ``"real"``, whose ranges scale the others.
    kinds : dict
        Column name -> ``"numeric"``, ``"datetime"`` or ``"categorical"``.

    Returns
    -------
    dict of str to ndarray
        The frames' rows as float64 arrays of equal width (None stays None).
    """
    names = [name for name, frame in frames.items() if frame is not None]
    blocks = {name: [] for name in names}
    for column, kind in kinds.items():
        if kind == "categorical":
            codes, n_values = shared_codes([frames[n][column] for n in names])
            for name, code in zip(names, codes):
                onehot = np.zeros((len(code), n_values + 1))  # + missing
                onehot[np.arange(len(code)), code] = 1 / np.sqrt(2)  # -1: last
                blocks[name].append(onehot)
            continue
        values = {n: as_float(frames[n][column], kind) for n in names}
        finite = values["real"][~np.isnan(values["real"])]
        low, span = (finite.min(), np.ptp(finite)) if len(finite) else (0.0, 0.0)
        has_missing = any(np.isnan(v).any() for v in values.values())
        for name in names:
            missing = np.isnan(values[name])
            scaled = np.where(missing, 0.0, (values[name] - low) / (span or 1.0))
            blocks[name].append(scaled[:, None])
            if has_missing:
                blocks[name].append(missing[:, None].astype(float))
    return {
        name: np.hstack(blocks[name]) if name in blocks else None for name in frames
    }


def _nearest(reference, queries, k=1):
    """Distances from each query row to its ``k`` closest reference rows."""
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(reference)
    return np.round(nn.kneighbors(queries)[0], DECIMALS)


def _row_hashes(matrix):
    return pd.util.hash_pandas_object(pd.DataFrame(matrix), index=False).to_numpy()


def privacy(train, synthetic, holdout, n_rows, rng):
    """Privacy figures from encoded rows (see the module's docstring).

    Parameters
    ----------
    train, synthetic : ndarray of shape (n, d)
        The real rows the generator learnt from, and the generated ones.
    holdout : ndarray of shape (n, d) or None
        Real rows the generator never saw; without them ``dcr_share``,
        ``mia_auc`` and ``dcr_median_holdout`` are not computed.
    n_rows : int or None
        At most this many rows of each set are queried (None: all); the rows
        they are compared with are always all of the other set.
    rng : numpy.random.Generator
        Draws the subsamples.

    Returns
    -------
    scores : dict
        Figure name -> value.
    distances : dict
        ``"synthetic"`` (and ``"holdout"``): distances to the closest
        training row, for the report's histograms.
    """
    scores = {
        "exact_copy_share": np.isin(_row_hashes(synthetic), _row_hashes(train)).mean()
    }
    queries = subsample(synthetic, n_rows, rng)
    closest = _nearest(train, queries, k=min(2, len(train)))
    distances = {"synthetic": closest[:, 0]}
    scores["dcr_median"] = np.median(closest[:, 0])
    if closest.shape[1] == 2:
        # two training rows at distance 0: the synthetic row singles out neither
        first, second = closest.T
        ratio = np.divide(first, second, out=np.ones_like(first), where=second > 0)
        scores["nndr"] = np.median(ratio)
    if holdout is None:
        return scores, distances

    others = subsample(holdout, n_rows, rng)
    distances["holdout"] = _nearest(train, others)[:, 0]
    scores["dcr_median_holdout"] = np.median(distances["holdout"])

    to_train, to_holdout = distances["synthetic"], _nearest(holdout, queries)[:, 0]
    closer = np.mean(to_train < to_holdout) + 0.5 * np.mean(to_train == to_holdout)
    # Were synthetic and real rows exchangeable, the closest of the n_t + n_h
    # real rows would be any of them alike: a training row with chance
    # n_t / (n_t + n_h). Weighing each set by its size puts chance at 0.5 for
    # any sizes, and all of the training rows can still be caught copied.
    per_train, per_holdout = closer / len(train), (1 - closer) / len(holdout)
    scores["dcr_share"] = per_train / (per_train + per_holdout)

    # the attacker's score: closeness of a real row to the synthetic data (the
    # AUC does not depend on how many members and non-members are scored)
    members = subsample(train, n_rows, rng)
    closeness = -_nearest(synthetic, np.vstack([members, others]))[:, 0]
    is_member = np.repeat([1, 0], [len(members), len(others)])
    scores["mia_auc"] = roc_auc_score(is_member, closeness)
    return scores, distances

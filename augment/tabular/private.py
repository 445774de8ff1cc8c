"""What a differentially private fit learns from a table before training.

Without privacy the encoder reads the table directly: mixtures, ranges and
rounding steps of numbers, category lists and frequencies, the class prior and
the value frequencies of training-by-sampling. Under differential privacy all
of them come from ONE Gaussian mechanism over count tables, or from public
knowledge the user declares:

* every column gets a table of counts: a categorical column
  over its values (the declared ``dp_categories``, the dtype's own categories
  for booleans and pandas categoricals, or else the values present), a number
  over the bins of a public grid (32 bins between declared ``dp_bounds``, or
  else a fixed geometric grid from -1e12 to 1e12, five bins a decade), with
  one more cell for missing values; with classes, one more table of class
  counts, and the tables of categorical columns count per (value, class),
  those of numbers per (bin, class) too where a class's cell could clear
  its noise (see :func:`_can_count_per_class`; not for a model that reads a
  column's map itself, the transformer). A row adds 1 to one cell of each
  table, whatever its class, so counting per class costs nothing more
  (parallel composition: the per-class cells of a table are disjoint
  counts of disjoint rows): the L2 sensitivity is
  ``sqrt(n_tables)``, and every cell gets Gaussian noise of standard
  deviation ``noise_multiplier * sqrt(n_tables)``. The noise multiplier is
  chosen so that this release alone spends ``PREPROCESSING_SHARE`` (a fifth) of
  epsilon; the accountant then composes it with the training.
* the values of a categorical column that nobody declared are data: a value
  is released only if its noisy count clears a threshold set so that a value
  held by a single row shows with probability at most ``delta / 10`` over all
  such columns (stability-based histograms); that tenth of delta is spent
  outside the accountant. Suppressed values are encoded as missing in
  training and never come out.
* the rest is post-processing, free of privacy cost: bins and the missing cell
  under four noise standard deviations are zeroed; a surrogate table drawn
  column by column from the noisy counts (uniform within bins, rounded for
  integer columns) is what the :class:`TableEncoder` is fitted on, so its
  mixtures (one mode per number), ranges, rounding steps and categories are
  private; the class prior and the per-class value frequencies of the
  conditioning are the noisy counts themselves. The encoder finds no point
  masses (values with a mode slot of their own, reproduced exactly): they
  would be exact values of the table, read outside the accounting.
* a number whose histogram has at least ``_WARP_BINS`` bins that clear the
  noise is encoded by its noisy cumulative distribution (``warp_x`` and
  ``warp_u`` of its column spec: ``2 cdf - 1``, linear within bins, over the
  kept bins from the first to the last), so that a skewed column (incomes,
  wages) keeps its resolution where its rows are; otherwise by a linear map
  of its whole range. Where the number was counted per class, every class
  gets such a map too (``class_warp_u``, over the same edges): the column's
  distribution tilted by a shift and a spread fitted to the class's noisy
  counts and shrunk by their noise (:func:`_class_weights`). Rows are
  encoded by their own class's map and synthetic rows decoded by theirs,
  so that the model learns the dependence between the columns within a
  class and the class-conditional distributions come from the release.
* the model may start from the same release: ``moments`` (the model-space
  means of the encoded surrogate) give the marginals of the one-hot groups,
  and the spread of the scalars of numbers encoded by their noisy CDF (about
  that of a uniform on [-1, 1]; NaN for the other scalars, whose surrogate
  spread is that of the declared range when no bin cleared the noise).

The number of rows is treated as public, as in Opacus' accounting. Class
labels (the set of classes), column names and dtypes are the schema: public.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..nn.privacy import PREPROCESSING_SHARE
from .encoder import (
    TableEncoder,
    _describe_column,
    _restore_dtype,
    column_kind,
    to_float,
)

_GRID = np.concatenate(
    [-(10.0 ** np.arange(12, -3.01, -0.2)), 10.0 ** np.arange(-3, 12.01, 0.2)]
)
_DECLARED_BINS = 32
_SURROGATE_ROWS = 5000
_THRESHOLD_DELTA = 0.1  # share of delta for releasing undeclared categories
_WARP_BINS = 3  # bins that clear the noise for a number to be encoded by them
_TILT_STEPS = 6  # Gauss-Newton steps of a class's tilt (see _class_weights)
_MODES = 1  # mixture modes per number (measured: see the user guide's privacy page)


@dataclass
class PrivateEncoding:
    """A private fit's encoder, the table it encodes, and the noisy counts."""

    encoder: TableEncoder
    table: pd.DataFrame  # the training table, suppressed values missing
    class_counts: np.ndarray  # noisy and clipped, or None without classes
    counts: dict  # column -> (values or None, noisy (cells, classes) counts)
    moments: np.ndarray  # (2, n_features_out): mean and std of the encoded surrogate

    def slot_counts(self, n_classes):
        """Noisy frequency of every slot of every categorical column within
        every class, padded: ``(n_discrete, max_width, max(n_classes, 1))``,
        the conditioning's frequencies."""
        specs = [s for s in self.encoder.columns_ if s.kind == "categorical"]
        width = max((len(s.slots) for s in specs), default=1)
        out = np.zeros((len(specs), width, max(n_classes, 1)))
        for j, spec in enumerate(specs):
            values, noisy = self.counts[spec.name]
            slots = len(spec.slots)
            index = pd.Index(spec.categories).get_indexer(
                pd.Index(values, dtype=object)
            )
            if spec.rare_values is not None:
                rare = pd.Index(spec.rare_values).get_indexer(
                    pd.Index(values, dtype=object)
                )
                index = np.where((index < 0) & (rare >= 0), len(spec.categories), index)
            kept = (
                index >= 0
            )  # suppressed values add nothing: their counts are unreleased
            np.add.at(out[j], index[kept], noisy[:-1][kept])
            if spec.has_missing:
                out[j, slots - 1] += noisy[-1]
            out[j, :slots] = np.maximum(out[j, :slots], 0) + 0.01  # every slot drawable
        return out


def private_encoding(
    table,
    labels,
    n_classes,
    budget,
    *,
    bounds,
    categories,
    seed,
    class_marginals=False,
):
    """Fit a :class:`TableEncoder` from noisy counts of ``table``.

    Parameters
    ----------
    table : DataFrame
    labels : ndarray of int or None
        Class index of every row.
    n_classes : int
    budget : PrivacyBudget
        The release is recorded in it.
    bounds : dict or None
        ``{column: (low, high)}``: public ranges of numeric columns.
    categories : dict or None
        ``{column: values}``: public value lists of categorical columns.
    seed : int
    class_marginals : bool, default=False
        With ``labels``: count numbers per (bin, class) too, and encode a
        number that has a noisy distribution by its distribution within its
        row's class (``class_warp_u``), shrunk towards the whole column's.

    Returns
    -------
    PrivateEncoding
    """
    bounds, categories = _check_declared(table, bounds or {}, categories or {})
    rng = np.random.default_rng(seed)
    cells = max(n_classes, 1)
    label = np.zeros(len(table), dtype=np.int64) if labels is None else labels
    columns = {}  # name -> (spec, domain values or bin edges, public, counts)
    for name in table.columns:
        values = table[name]
        spec = _describe_column(values)
        if spec.kind == "categorical":
            domain = _public_values(values, categories.get(name))
            public = domain is not None
            if not public:
                domain = values.dropna().unique()
            codes = pd.Index(domain, dtype=object).get_indexer(values.astype(object))
            outside = (codes < 0) & values.notna().to_numpy()
            if outside.any():
                warnings.warn(
                    f"Column {name!r} holds values outside its declared "
                    f"dp_categories, such as {values[outside].iloc[0]!r}; they are "
                    "treated as missing.",
                    UserWarning,
                    stacklevel=6,
                )
            codes = np.where(codes < 0, len(domain), codes)
        else:
            x = to_float(values, spec.kind)
            if name in bounds:
                low, high = bounds[name]
                if np.nanmin(x) < low or np.nanmax(x) > high:
                    warnings.warn(
                        f"Column {name!r} has values outside its declared "
                        f"dp_bounds ({low!r}, {high!r}); they are clipped.",
                        UserWarning,
                        stacklevel=6,
                    )
                domain, public = np.linspace(low, high, _DECLARED_BINS + 1), True
            else:
                domain, public = _GRID, True
            bins = np.searchsorted(domain, x, side="right") - 1
            codes = np.clip(bins, 0, len(domain) - 2)
            codes = np.where(np.isnan(x), len(domain) - 1, codes)
        if spec.kind == "categorical":  # per class: the conditioning needs them
            size, width, row_label = len(domain) + 1, cells, label
        elif class_marginals and labels is not None:  # the distribution per class
            size, width, row_label = len(domain), cells, label
        else:  # the encoder needs the marginal only
            size, width, row_label = len(domain), 1, 0
        counts = np.bincount(codes * width + row_label, minlength=size * width)
        columns[name] = (spec, domain, public, counts.reshape(size, width))

    # one Gaussian mechanism over all the tables
    thresholded = [n for n, c in columns.items() if not c[2]]
    reserved = _THRESHOLD_DELTA * budget.delta if thresholded else 0.0
    noise_multiplier = budget.gaussian_noise(PREPROCESSING_SHARE, reserved)
    unused = _unused_histograms(
        len(table), noise_multiplier, len(columns) + (labels is not None), bounds
    )
    n_tables = len(columns) - len(unused) + (labels is not None)
    std = noise_multiplier * np.sqrt(n_tables)
    if class_marginals and not _can_count_per_class(len(table), cells, std):
        class_marginals = False  # the numbers' counts of the whole table only
        for name, (spec, domain, public, counts) in columns.items():
            if spec.kind != "categorical":
                counts = counts.sum(axis=1, keepdims=True)
                columns[name] = (spec, domain, public, counts)
    counted_per_class = (
        " per class (every row is in one cell of each table, whatever its "
        "class: the per-class counts cost what the counts of the whole "
        "table would)"
        if labels is not None and class_marginals
        else ""
    )
    budget.add(
        f"encoder and conditioning statistics: Gaussian noisy counts of "
        f"{n_tables} tables{counted_per_class} (L2 sensitivity sqrt({n_tables}))"
        + (f", thresholds on the values of {thresholded}" if thresholded else ""),
        noise_multiplier,
        delta=reserved,
    )
    class_counts = None
    if labels is not None:
        noisy = np.bincount(label, minlength=n_classes) + std * rng.standard_normal(
            n_classes
        )
        # a pseudo-count of one noise deviation: a class whose noisy count
        # fell below zero may hold that many rows, and is still drawn
        class_counts = np.maximum(noisy, 0) + max(std, 0.5)
    threshold = 1 + std * np.sqrt(cells) * norm.isf(reserved / max(len(thresholded), 1))
    n_rows = min(max(len(table), 200), _SURROGATE_ROWS)
    surrogate, released, shares = {}, {}, {}
    for name, (spec, domain, public, counts) in columns.items():
        if name in unused:  # not released: no bin (nor missing) clears the noise
            noisy = np.zeros(counts.shape)
        else:
            noisy = counts + std * rng.standard_normal(counts.shape)
        total = noisy.sum(axis=1)
        marginal_std = std * np.sqrt(counts.shape[1])
        dtype_missing = _can_be_missing(table[name].dtype)
        if spec.kind == "categorical":
            keep = np.ones(len(domain), bool) if public else total[:-1] > threshold
            if not keep.any():
                raise ValueError(
                    f"No value of column {name!r} can be released at "
                    f"dp_epsilon={budget.epsilon:g}: the most frequent one would "
                    f"need about {threshold:.0f} rows. Declare its values "
                    "(dp_categories={column: [...]}), raise dp_epsilon, or drop "
                    "the column."
                )
            released[name] = (np.asarray(domain, dtype=object), noisy)
            missing = dtype_missing  # a slot for missing and suppressed values
        else:
            # noise on empty bins would spread the surrogate over the whole
            # grid: bins under a few noise deviations are dropped (post-processing)
            declared = name in bounds
            keep = total[:-1] > (3 if declared else 4) * marginal_std
            if keep.sum() >= _WARP_BINS:  # a distribution to encode by
                per_class = noisy[:-1] if counts.shape[1] > 1 else None
                shares[name] = (domain, total[:-1], keep, per_class)
            if not keep.any() and declared:  # too little signal: the whole range
                keep[:], total[:-1] = True, 1.0
            elif not keep.any():  # around the largest bin of the public grid
                top = np.argmax(total[:-1])
                keep[max(top - 2, 0) : top + 3] = True
                total[:-1] = np.where(keep, 1.0, total[:-1])
            missing = dtype_missing and total[-1] > 4 * marginal_std
        n_missing = max(1, int(n_rows * _share(total, -1))) if missing else 0
        weights = np.maximum(total[:-1], 0) * keep
        if spec.kind == "categorical":
            draw = _draw(weights, n_rows - n_missing, rng, at_least=keep)
            column = np.asarray(domain, dtype=object)[draw]
            column = np.concatenate([column, np.full(n_missing, None, object)])
        else:
            draw = _draw(weights, n_rows - n_missing, rng)
            column = rng.uniform(domain[draw], domain[draw + 1])
            if pd.api.types.is_integer_dtype(table[name].dtype):
                column = np.round(column)
            column = np.concatenate([column, np.full(n_missing, np.nan)])
        surrogate[name] = _restore_dtype(column, spec)
    surrogate = pd.DataFrame(surrogate)
    surrogate.columns = table.columns
    # no point masses: exact values of the table would be found outside the
    # accounting (the surrogate's uniform draws within bins hold none anyway);
    # one mode per number: a surrogate drawn from noisy histograms has no
    # modes worth a slot, and every slot adds parameters to the private
    # network, hence noise to each of its steps
    encoder = TableEncoder(max_modes=_MODES, max_points=0, random_state=seed)
    encoder = encoder.fit(surrogate)
    for spec in encoder.columns_:
        if spec.kind == "categorical":
            continue
        if spec.name in bounds:  # public: decoding clips to the declared range
            spec.low, spec.high = bounds[spec.name]
        if spec.name in shares:
            domain, total, keep, per_class = shares[spec.name]
            _warp(spec, domain, total, keep, per_class, class_counts, std)
            continue
        # too few bins clear the noise: a linear map whose mode reaches the
        # whole range, so that real values the surrogate's mode does not
        # cover are not clipped onto its edges
        farthest = np.maximum(
            np.abs(spec.means - spec.low), np.abs(spec.high - spec.means)
        )
        spec.reach = np.maximum(spec.reach, farthest)
    encoded = encoder.transform(surrogate)
    moments = np.stack([encoded.mean(axis=0), encoded.std(axis=0)])
    for spec in encoder.columns_:  # a spread known only from a noisy CDF
        if spec.kind != "categorical" and spec.warp_x is None:
            moments[1, spec.spans[0].start] = np.nan
    return PrivateEncoding(
        encoder, _encodable(table, encoder, bounds), class_counts, released, moments
    )


def _can_count_per_class(n_rows, n_classes, std):
    """Whether counts of numbers per (bin, class) can show a class's own
    distribution: in the best case (the rows in equal classes, each in
    ``_WARP_BINS`` bins) a cell clears three deviations of its noise. Else
    the per-class counts would only add noise (``sqrt(n_classes)`` times
    the deviation of a cell) to the whole column's distribution, and the
    numbers are counted over the whole table. Decided from public figures
    only (the number of rows, the noise, the schema)."""
    return n_classes > 1 and n_rows / (n_classes * _WARP_BINS) >= 3 * std


def _unused_histograms(n_rows, noise_multiplier, n_tables, bounds):
    """The numbers with declared bounds whose histograms are not released:
    all of them when even the best case, the rows in ``_WARP_BINS`` bins of
    equal counts, would not clear the noise of a release of every table
    (``n_rows / _WARP_BINS`` below three noise deviations). Their encoding is
    then the linear map of the declared range, as when no bin clears the
    noise, and the other tables (class and categorical counts) get less
    noise. Decided from public figures only (the number of rows, the noise,
    the schema), never from the counts."""
    std = noise_multiplier * np.sqrt(n_tables)
    return set(bounds) if n_rows / _WARP_BINS < 3 * std else set()


def _warp(spec, edges, total, keep, per_class=None, class_counts=None, std=None):
    """Encode the number by its noisy cumulative distribution: the edges of
    its histogram bins map to ``2 cdf - 1``, linearly between, and a single
    mode covers [-1, 1]. Skewed columns so keep their resolution where their
    rows are (post-processing of the counts). The kept bins weigh their noisy
    counts; the bins beyond them on either side, too thin one by one to clear
    the noise, weigh their noisy total (at least 0) as one segment out to the
    end of the column's range (the declared bounds), so that the values there
    are spread over it rather than piled up at the ends of the kept bins.

    With ``per_class`` (the noisy ``(bins, classes)`` counts whose sum over
    the classes is ``total``), ``class_counts`` (the noisy class counts) and
    ``std`` (the noise deviation of a cell), every class gets a map of its
    own over the same edges (``class_warp_u``): see :func:`_class_weights`."""
    kept = np.flatnonzero(keep)
    first, last = kept[0], kept[-1]
    weights = np.maximum(total[first : last + 1], 0) * keep[first : last + 1]
    tails = [max(total[:first].sum(), 0), max(total[last + 1 :].sum(), 0)]
    edges = np.concatenate([[spec.low], edges[first : last + 2], [spec.high]])
    weights = np.concatenate([[tails[0]], weights, [tails[1]]])
    x = np.clip(edges, spec.low, spec.high)
    weights = weights / max(weights.sum(), 1e-12) + 1e-6  # strictly increasing
    maps = [weights]
    if per_class is not None:
        inside = per_class[first : last + 1] * keep[first : last + 1, None]
        segments = np.concatenate(
            [per_class[:first].sum(0)[None], inside, per_class[last + 1 :].sum(0)[None]]
        )
        # the cells a segment sums (its noise variance in cell variances);
        # bins inside that did not clear the noise weigh nothing
        cells = np.concatenate([[first], np.ones(len(inside)), [len(total) - last - 1]])
        classes = _class_weights(weights, segments, cells, class_counts, std)
        maps += list(classes.T + 1e-6)
    cdfs = np.stack([np.concatenate([[0.0], np.cumsum(w)]) / w.sum() for w in maps])
    # a tail of no width (the range ends at a kept edge) adds nothing
    x, unique = np.unique(x, return_index=True)
    u = 2 * cdfs[:, unique] - 1
    u[:, -1] = 1.0
    spec.warp_x, spec.warp_u = x, u[0]
    if per_class is not None:
        spec.class_warp_u = u[1:]
    spec.means, spec.stds = np.zeros(1), np.full(1, 0.5)
    spec.weights, spec.reach = np.ones(1), np.ones(1)


def _class_weights(weights, segments, cells, class_counts, std):
    """The distribution of a number within every class, over the segments
    of its map: the whole column's (``weights``) tilted by
    ``exp(a u + b u**2)``, ``u`` the segment's place on the column's map
    (``2 cdf - 1`` at its middle): a shift and a spread per class. ``a`` and
    ``b`` are fitted to the noisy per-class counts of the segments
    (``segments``, ``(n_segments, n_classes)``) by weighted least squares,
    ``_TILT_STEPS`` Gauss-Newton steps from no tilt (noise variance
    ``std**2`` times the ``cells`` a segment sums),
    then shrunk towards 0 by their own noise (``theta * max(0, 1 - var /
    theta**2)``): a class whose counts are mostly noise (few rows, a small
    epsilon) keeps the whole column's distribution, a large one gets its
    own. All from released counts: post-processing."""
    p = weights / weights.sum()
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    u = cdf[:-1] + cdf[1:] - 1
    features = np.stack([u, u**2], axis=1)
    n = np.asarray(class_counts, float)  # noisy, positive
    inverse_variance = 1.0 / (std**2 * np.maximum(cells, 1))
    theta = np.zeros((len(n), 2))
    for _ in range(_TILT_STEPS):  # Gauss-Newton from no tilt
        classes = _tilted(p, features, theta)
        centred = features[:, None, :] - np.einsum("sk,sj->kj", classes, features)
        jacobian = n[:, None] * classes[:, :, None] * centred  # (segments, classes, 2)
        residual = segments - n * classes
        gram = np.einsum("skj,s,skl->kjl", jacobian, inverse_variance, jacobian)
        precision = np.linalg.pinv(gram)
        gradient = np.einsum("skj,s,sk->kj", jacobian, inverse_variance, residual)
        theta = np.clip(theta + np.einsum("kjl,kl->kj", precision, gradient), -30, 30)
    variance = np.diagonal(precision, axis1=1, axis2=2)
    theta = theta * np.maximum(0.0, 1 - variance / np.maximum(theta**2, 1e-300))
    return _tilted(p, features, theta)


def _tilted(p, features, theta):
    """``p`` tilted by ``exp(features @ theta[k])`` for every class ``k``,
    normalised: ``(segments, classes)``."""
    log = features @ theta.T
    tilt = np.exp(log - log.max(axis=0))
    classes = p[:, None] * tilt
    return classes / classes.sum(axis=0)


def _share(total, index):
    return max(total[index], 0) / max(np.maximum(total, 0).sum(), 1e-12)


def _draw(weights, n, rng, at_least=None):
    """``n`` indices drawn by ``weights``, each ``at_least`` index once."""
    first = np.flatnonzero(at_least) if at_least is not None else np.zeros(0, int)
    if weights.sum() <= 0:
        weights = np.asarray(
            at_least if at_least is not None else np.ones_like(weights), float
        )
    rest = rng.choice(
        len(weights), size=max(n - len(first), 0), p=weights / weights.sum()
    )
    return rng.permutation(np.concatenate([first, rest]).astype(np.int64))


def _can_be_missing(dtype):
    return not (isinstance(dtype, np.dtype) and dtype.kind in "biu")


def _public_values(values, declared):
    """The public values of a categorical column: declared, or its dtype's."""
    if declared is not None:
        return np.asarray(list(declared), dtype=object)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.categories.to_numpy(dtype=object)
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.array([False, True], dtype=object)
    return None


def _encodable(table, encoder, bounds):
    """The training table as the private encoder can encode it: values that
    were not released become missing, numbers are clipped to declared bounds."""
    table = table.copy()
    for spec in encoder.columns_:
        values = table[spec.name]
        if spec.kind == "categorical":
            known = list(spec.categories) + list(
                [] if spec.rare_values is None else spec.rare_values
            )
            unknown = (
                ~values.astype(object).isin(known).to_numpy()
                & values.notna().to_numpy()
            )
            if unknown.any():
                table[spec.name] = values.where(~unknown)
        elif spec.name in bounds and spec.kind == "numeric":
            table[spec.name] = values.clip(*bounds[spec.name])
    return table


def _check_declared(table, bounds, categories):
    for argument, declared in (("dp_bounds", bounds), ("dp_categories", categories)):
        if not isinstance(declared, dict):
            raise TypeError(
                f"{argument} must be a dict {{column: ...}}; got "
                f"{type(declared).__name__}."
            )
        unknown = [c for c in declared if c not in table.columns]
        if unknown:
            raise ValueError(
                f"{argument} names {unknown}, which are not columns of the table."
            )
    checked = {}
    for column, pair in bounds.items():
        if column_kind(table[column]) == "categorical":
            raise ValueError(
                f"dp_bounds: column {column!r} is categorical; declare its values "
                "in dp_categories instead."
            )
        as_number = (
            (lambda v: pd.Timestamp(v).timestamp())
            if column_kind(table[column]) == "datetime"
            else float
        )
        try:
            low, high = (as_number(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(
                f"dp_bounds[{column!r}] must be a pair (low, high) of numbers; "
                f"got {pair!r}."
            ) from None
        if not low < high:
            raise ValueError(
                f"dp_bounds[{column!r}] = {pair!r}: low must be below high."
            )
        checked[column] = (low, high)
    for column in categories:
        if column_kind(table[column]) != "categorical":
            raise ValueError(
                f"dp_categories: column {column!r} is numeric; declare its range "
                "in dp_bounds instead."
            )
    return checked, categories

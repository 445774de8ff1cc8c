"""TabularTransformer: an any-order autoregressive model over the columns of a table."""

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._docstrings import fill_doc
from ..nn import in_blocks, init_parameters, mlp, parallel, update
from ..nn.privacy import DP_SGD_SETTINGS
from .conditioning import RangeCondition
from .encoder import decode_numbers, encode_numbers, points_of, to_float, typical
from .generator import _TARGET, DP_CONSTRAINTS, TabularGenerator


@fill_doc
class TabularTransformer(TabularGenerator):
    """Any-order autoregressive model over the columns of a table.

    Every column becomes one token: a category is its encoder slot (rare
    values and missing values included); a number is its bin among up to
    ``n_bins`` quantile bins of the training values, with the encoder's
    point masses (a zero of a zero-inflated column, the few values of a
    count) kept as exact tokens, and missing values as a
    token of their own. A network reads the class label (the first token)
    and the tokens known so far, the others masked, and predicts a
    distribution for every unknown column. It is trained over random column
    orders (a random number of columns shown, the loss on the hidden ones),
    so that it predicts any column from any subset of the others. A number's
    target is spread over the neighbouring bins of its column
    (``smoothing``), so that a small table, where a handful of rows backs
    each bin, is learnt rather than memorised.

    Sampling goes column by column, in a random order per row, all rows of a
    block at once: conditions come first, so that the model conditions on
    any subset of columns exactly: a category (its token is given), a
    numeric range (only the bins that meet the range can be drawn, and the
    value within its bin is drawn inside the range), and the class label
    (class counts are exact, never rejection-sampled). A number is drawn
    within its bin from the piecewise-linear distribution through a few
    quantiles of the bin's training values (up to 8 segments, fewer on a
    small table, uniform for exact tokens), so that a wide outer bin is not
    filled out to its extreme; the encoder's decoding then rounds it to the
    training precision (integers stay integers). :meth:`log_prob` gives the
    log-likelihood of rows under the model, for outlier checks.

    Under differential privacy (``dp_epsilon``), a number's tokens are
    ``n_bins`` bins of equal mass under the noisy cumulative distribution
    that the private encoder released (or of equal width over its range,
    where none was), never quantiles of the rows; a number is drawn
    uniformly within its bin (no quantiles of the rows within it either);
    and the whole network is trained by DP-SGD.

    Parameters
    ----------
    %(sampling_strategy)s
    %(enlarge)s
    %(rules)s
    network : {"mlp", "transformer"}, default="mlp"
        ``"transformer"``: self-attention over the column tokens (a column's
        identity is its position embedding). ``"mlp"``: a multi-layer
        perceptron over the concatenated token embeddings (a MADE-style
        network without its fixed order), several times faster on a CPU.
    n_bins : int, default=32
        Most tokens a numeric column gets (exact values and quantile bins).
    smoothing : float or "auto", default="auto"
        How far a number's training target spreads over the neighbouring
        bins of its column: the standard deviation, in bins, of a Gaussian
        over the column's ordered tokens (point masses and the missing token
        keep a one-hot target); 0 trains on one-hot targets. Quantile bins
        give every column a uniform distribution of tokens, so all the
        network learns is how the bins of a column depend on the others; on
        a small table each of many bins rests on a handful of rows, and
        one-hot targets are memorised within a few steps (the held-out
        likelihood falls from the first epoch on). Smoothing ties
        neighbouring bins together. ``"auto"``: a Gaussian of
        ``1 / sqrt(n_rows)`` in quantiles, that is ``n / sqrt(n_rows)`` bins
        for a column of ``n`` ordered tokens (about 3 of 32 bins at 120
        rows, half a bin at 4,000). The held-out loss of early stopping and
        :meth:`log_prob` use the exact tokens.
    width : int or None, default=None
        Width of the token embeddings (transformer) or of the hidden layers
        (mlp, whose token embeddings have 16 entries). None: 256, or 32
        under differential privacy (see ``training_settings_``).
    depth : int, default=2
        Number of transformer blocks or of hidden layers.
    heads : int, default=4
        Attention heads of the transformer; ``width`` must be a multiple of it.
    %(epochs_early_stopping)s
        Under differential privacy, None is 100 epochs, with no rows held out
        (see ``training_settings_``).
    %(batch_size)s
    %(learning_rate)s
    %(dp_epsilon)s
    %(dp_delta)s
    %(max_grad_norm)s
    %(dp_bounds)s
    %(dp_categories)s
    %(device)s
    %(precision)s
    %(random_state)s
    %(verbose)s

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network, with the tokens of every column.
    %(history_)s
        The loss: ``nll``, the negative log-likelihood of a row's tokens (an
        unbiased estimate over random column orders).
    %(tabular_attributes)s
    %(target_attributes)s
    %(privacy_attributes)s

    See Also
    --------
    TabularVAE : A conditional variational auto-encoder.
    TabularGAN : A conditional GAN.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from augment import TabularTransformer
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> gen = TabularTransformer(epochs=5, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(10, y=2, conditions={"sepal width (cm)": (3, 4)})
    >>> X_new["sepal width (cm)"].between(3, 4).all(), y_new.value_counts().to_dict()
    (np.True_, {2: 10})
    >>> gen.log_prob(X[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        **TabularGenerator._parameter_constraints,
        **DP_CONSTRAINTS,
        "network": [StrOptions({"mlp", "transformer"})],
        "n_bins": [Interval(numbers.Integral, 2, None, closed="left")],
        "width": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "smoothing": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    _range_conditions = True
    # its tokens read a number's value alone (the modes of a mixture encoding
    # are no input of its network): one mode, the same tokens, and a fit that
    # skips most of the mixture's updates (0.2-0.4 s a table)
    _encoder_modes = 1
    _class_marginals = False  # its number tokens read the column's one map
    _default_steps = 800
    _default_epoch_bounds = (30, 300)
    _settings = {"batch_size": 256, "learning_rate": 5e-3, "width": 256}
    # 100 epochs under DP, not the shared 30: better at epsilon 1 on breast
    # cancer, wine and wage1 (0.82 -> 0.94, 0.39 -> 0.43, 0.73 -> 0.78,
    # three seeds; 200 worse), the same on credit_data
    _private_settings = DP_SGD_SETTINGS | {"epochs": 100, "width": 32}

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        rules="auto",
        network="mlp",
        n_bins=32,
        smoothing="auto",
        width=None,
        depth=2,
        heads=4,
        epochs=None,
        batch_size=None,
        learning_rate=None,
        dp_epsilon=None,
        dp_delta=None,
        max_grad_norm=1.0,
        dp_bounds=None,
        dp_categories=None,
        device="cpu",
        precision="auto",
        random_state=None,
        verbose=0,
    ):
        self.sampling_strategy = sampling_strategy
        self.enlarge = enlarge
        self.rules = rules
        self.network = network
        self.n_bins = n_bins
        self.smoothing = smoothing
        self.width = width
        self.depth = depth
        self.heads = heads
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.max_grad_norm = max_grad_norm
        self.dp_bounds = dp_bounds
        self.dp_categories = dp_categories
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _build_modules(self, init):
        specs, bins = self.encoder_.columns_, self._token_bins
        # files from before the within-bin quantiles hold none: uniform draws
        knots = getattr(self, "_bin_knots", None)
        tokens_of = _Tokens(specs, None, self.n_bins, fitted=bins, knots=knots)
        # model files from before ``width`` defaulted to None hold no width
        # in their settings, but in their parameters
        width = self.training_settings_.get("width", self.width)
        module = _AnyOrder(
            tokens_of,
            self._n_classes,
            self.network,
            width,
            self.depth,
            self.heads,
            # DP-SGD's per-row gradients (vmap) have no batching rule for
            # scaled_dot_product_attention's CPU kernels
            private=self.dp_epsilon is not None,
        )
        self.module_ = init_parameters(module, init)

    def _train(self, data, labels, generator):
        width = self.training_settings_["width"]
        if self.network == "transformer" and width % self.heads:
            raise ValueError(f"width={width} must be a multiple of heads={self.heads}.")
        vars(self).pop("_private_moments", None)  # the VAE's start only
        if self._privacy is not None:
            # the private encoder's noisy CDFs, never the rows' own quantiles;
            # no within-bin quantiles: a number is drawn uniformly in its bin
            self._token_bins = _private_bins(self.encoder_.columns_, self.n_bins)
            self._bin_knots = None
        else:  # under a process group, the bins of rank 0's rows on every rank

            def fitted():
                found = _Tokens(self.encoder_.columns_, data, self.n_bins)
                return found.fitted, found.knots

            self._token_bins, self._bin_knots = parallel.once(fitted)
        self._build_modules(self._init_generator())
        if self._privacy is not None:
            self.module_.start_at(
                self.encoder_.columns_, self._token_bins, self.conditioning_
            )
        module = self.module_ = self.module_.to(data.device)
        tokens = module.tokens.tokenise(data)
        optimiser = torch.optim.Adam(
            module.parameters(),
            lr=self.training_settings_["learning_rate"],
            fused=data.device.type in ("cpu", "cuda"),  # one kernel for all parameters
        )
        n_columns = tokens.shape[1]
        spread = self._spread(len(data))
        targets = None if spread is None else module.tokens.soft_targets(spread)
        columns = torch.arange(n_columns, device=data.device)

        def shown(n, generator):
            # a random order per row, and a random number of its columns shown
            count = torch.randint(n_columns, (n, 1), **_on(generator))
            order = torch.rand((n, n_columns), **_on(generator)).argsort(1)
            # the first ``count`` columns of every row's order are shown
            first = columns < count
            return torch.zeros_like(first).scatter_(1, order, first)

        def loss(module, batch, known, label=None):
            log_probs = module.log_probs(batch, known, label)
            if targets is not None and module.training:  # the held-out loss: exact
                # (rows, n_columns, max_size), as one index_select
                index = (columns * targets.shape[1] + batch).flatten()
                target = targets.flatten(0, 1).index_select(0, index)
                target = target.view(*batch.shape, -1)
                picked = (target * log_probs).sum(2)
            else:
                picked = log_probs.gather(2, batch.unsqueeze(2)).squeeze(2)
            # orderless NADE: the hidden columns' loss, scaled to a whole row
            hidden_columns = n_columns - known.sum(1)
            hidden = -(picked * ~known).sum(1) * n_columns / hidden_columns
            return hidden.mean()

        def rows_of(index, generator):
            rows = (tokens[index], shown(len(index), generator))
            return rows if labels is None else (*rows, labels[index])

        def nll(index, generator):
            return loss(module, *rows_of(index, generator))

        def step(index):
            if private is None:
                found = nll(index, generator)
                update(optimiser, found)
                return {"nll": found}
            # DP-SGD on the whole network; its losses on real rows are not
            # released (history_ holds epochs only)
            optimiser.zero_grad(set_to_none=True)
            private(*rows_of(index, generator))
            optimiser.step()
            return {}

        private = None
        if self._privacy is not None:
            private = self._private_gradient(
                module, loss, len(data), generator, "DP-SGD on the whole network"
            )
        module.train()
        history = self._run_epochs(
            step, len(data), generator, held_out_loss=nll, module=module
        )
        module.eval()
        return history

    def _spread(self, n_rows):
        """The standard deviation, in bins, of every column's smoothing
        (``smoothing`` resolved): ``(n_columns,)``, or None for none."""
        rank = self.module_.tokens.rank
        if self.smoothing == "auto":  # 1 / sqrt(rows) in quantiles
            return (rank.amax(1) + 1).clamp_min(1) / math.sqrt(n_rows)
        if self.smoothing:
            return torch.full_like(rank[:, 0], float(self.smoothing))
        return None

    # ------------------------------------------------------------ sampling
    def _label_distribution(self, conditions):
        """Class probabilities given the conditions: the tabular layer's
        training frequencies for the discrete ones, times the probability
        the model gives each range in each class (given the discrete ones)."""
        discrete = [c for c in conditions if not _is_range(c)]
        probs = super()._label_distribution(discrete)
        ranges = [c for c in conditions if _is_range(c)]
        if not ranges:
            return probs
        module = self.module_.eval()
        device = module.mask_ids.device
        n_classes, n_columns = len(self.classes_), module.tokens.n_columns
        labels = torch.arange(n_classes, device=device)
        tokens = torch.zeros((n_classes, n_columns), dtype=torch.long, device=device)
        known = torch.zeros_like(tokens, dtype=torch.bool)
        for condition in discrete:
            column = module.tokens.index(condition.column)
            tokens[:, column], known[:, column] = condition.slot, True
        log_p = torch.as_tensor(np.log(np.asarray(probs) + 1e-30), device=device)
        with torch.no_grad():
            token_probs = module.log_probs(tokens, known, labels).exp()
            for condition in ranges:
                column = module.tokens.index(condition.column)
                share = module.tokens.share_in_range(column, condition)
                inside = (token_probs[:, column] * share).sum(1)
                log_p = log_p + torch.log(inside.double() + 1e-30)
        return torch.softmax(log_p, 0).cpu().numpy()

    def _generate(self, labels, n_samples, generator, conditions=()):
        module = self.module_.eval()
        device = generator.device
        if not n_samples:
            return torch.zeros((0, self.encoder_.n_features_out_), device=device)
        if labels is None:
            labels = torch.zeros(n_samples, dtype=torch.long, device=device)
        return in_blocks(lambda b: module.sample(b, generator, conditions), labels)

    # -------------------------------------------------------- likelihood
    def log_prob(self, X, y=None):
        """Log-likelihood of every row under the fitted model.

        The sum, over the columns in table order, of the log-probability of
        each column's token given the label and the columns before it, plus,
        for a number inside a bin, the log-density of its value within the
        bin, under the within-bin distribution numbers are drawn from (per
        unit of the column for continuous columns, per value of the training
        precision for rounded ones, such as integers).
        Rows with a number that no token covers get ``-inf``: outside the
        training range, or, in a column learnt as exact values (at most
        ``n_bins`` distinct ones, or point masses beside the bins), a value
        that no training row holds, which the model never generates; a
        category never seen in training is an error, as for the encoder.
        Low values flag outliers.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Rows with the training columns.
        y : array-like of shape (n_samples,) or None, default=None
            With a generator fitted with class labels: the labels of the rows
            (then the log-likelihood is conditional on them), or None to sum
            over the classes, weighted by their training frequency. Required
            for a generator fitted with a continuous target.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        table, _ = self._check_X(X)
        table = self._rules.split(table)  # what rules derive adds no likelihood
        labels = None
        if self.target_type_ == "continuous":
            if y is None:
                raise ValueError(
                    "y is required: this generator was fitted with a continuous "
                    "target, which is part of the rows' likelihood."
                )
            table = table.assign(**{_TARGET: np.asarray(y, dtype=np.float64)})
        elif self.target_type_ == "classes" and y is not None:
            y = np.asarray(y)
            if y.shape != (len(table),):
                raise ValueError(
                    f"y must have one label per row ({len(table)}); "
                    f"got shape {y.shape}."
                )
            labels = self._class_index(y)
        elif y is not None:
            raise ValueError(
                "y was given, but this generator was fitted without labels."
            )
        module = self.module_
        device = self._ready_device()
        rows = torch.as_tensor(self.encoder_.transform(table), device=device)
        with torch.no_grad():
            tokens, within = module.tokens.tokenise(rows, within=True)
            if self.target_type_ != "classes":
                per_class = module.log_likelihood(tokens, None)[:, None]
            elif labels is not None:
                index = torch.as_tensor(labels, dtype=torch.long, device=device)
                per_class = module.log_likelihood(tokens, index)[:, None]
            else:
                per_class = torch.stack(
                    [
                        module.log_likelihood(tokens, torch.full_like(tokens[:, 0], k))
                        for k in range(len(self.classes_))
                    ],
                    dim=1,
                ) + torch.as_tensor(np.log(self.class_prior_), device=device)
            total = torch.logsumexp(per_class.double(), dim=1) + within
        total = total.cpu().numpy()
        # the encoding clips numbers to the training range: check them here
        for spec in self.encoder_.columns_:
            if spec.kind != "categorical":
                x = to_float(table[spec.name], spec.kind)
                total[(x < spec.low) | (x > spec.high)] = -np.inf
        return total


#: the logit of a padding token: finite, so that the soft targets' zeros on
#: padding times its log-probability are zeros, not NaN, without a clamp over
#: the whole (rows, columns, tokens) array; exp() of it is 0 in float32
_PADDING = -1e9


def _on(generator):
    return {"generator": generator, "device": generator.device}


def _is_range(condition):
    return isinstance(condition, RangeCondition)


# ======================================================================
# columns as tokens
# ======================================================================
class _Tokens(nn.Module):
    """Every column of the encoder's model space as one token, and back.

    A categorical column's token is its one-hot slot. A numeric column's
    tokens are intervals of its values, each with the region its values are
    drawn from: exact values (a point, or the half-step around a value of a
    rounded column) and quantile bins of the other values, then the missing
    token. Tokens of all columns share one vocabulary (``offsets``).
    ``fitted`` (the ``fitted`` bins of a previous instance, by column index)
    rebuilds the same tokens without the data, as loading a model file does,
    and ``knots`` its ``knots`` (None: a number is drawn uniformly in its
    token's region, as under differential privacy).

    Fitted on rows, a numeric column also keeps a few quantiles of the
    training values within each of its tokens (``knots``, see
    :func:`_within_knots`): a number is drawn from the piecewise-linear
    distribution through them, so that a wide outer bin, whose rows crowd
    towards the inner edge, is not filled uniformly out to its extreme.
    """

    def __init__(self, specs, data, n_bins, fitted=None, knots=None):
        super().__init__()
        self.specs = specs
        self.names = [s.name for s in specs]
        sizes = []
        values = None if fitted is not None else self._values(data)
        self.fitted = {}  # the bins of every numeric column, to rebuild from
        self.knots = {} if fitted is None else knots  # within-bin quantiles
        for j, spec in enumerate(specs):
            if spec.kind == "categorical":
                sizes.append(spec.spans[0].width)
                continue
            if fitted is not None:
                bins = fitted[j]
            else:
                x, missing = values[j]
                x = x[~missing].cpu().numpy()
                bins = _bins(x, n_bins, spec.step, points_of(spec))
                self.knots[j] = _within_knots(x, bins, spec.step)
            self.fitted[j] = bins
            for name, array in zip(("lo", "hi", "exact", "within"), bins, strict=True):
                self.register_buffer(f"{name}{j}", torch.as_tensor(array))
            if self.knots is not None:
                self.register_buffer(f"knots{j}", torch.as_tensor(self.knots[j]))
            sizes.append(len(bins[0]) + spec.has_missing)
        self.sizes = sizes
        self.n_columns = len(specs)
        self.max_size = max(sizes)
        self.offsets = [int(o) for o in np.cumsum([0, *sizes[:-1]])]
        self.n_tokens = int(sum(sizes))
        # the global vocabulary index of every (column, token), padded
        index = torch.zeros((self.n_columns, self.max_size), dtype=torch.long)
        valid = torch.zeros((self.n_columns, self.max_size), dtype=torch.bool)
        for j, size in enumerate(sizes):
            index[j, :size] = torch.arange(self.offsets[j], self.offsets[j] + size)
            valid[j, :size] = True
        self.register_buffer("vocabulary", index)
        self.register_buffer("valid", valid)
        # the rank of every numeric token among its column's ordered tokens
        # (-1 for categories, point masses and the missing token): the
        # neighbours that the training targets are smoothed over
        rank = torch.full((self.n_columns, self.max_size), -1.0)
        for j, bins in self.fitted.items():
            lo, hi, exact, _ = bins
            points = points_of(specs[j])
            centre = (lo + hi) / 2
            is_point = exact & np.isin(np.round(centre, 9), np.round(points, 9))
            ordered = np.flatnonzero(~is_point)
            rank[j, torch.as_tensor(ordered)] = torch.arange(len(ordered)).float()
        self.register_buffer("rank", rank, persistent=False)

    def index(self, name):
        return self.names.index(name)

    def ordinal_basis(self, degree=None):
        """``(n_outputs, n_tokens)``: every token's logit (and embedding) as
        a combination of a network's outputs. A number's ordered tokens
        share ``degree`` outputs, the powers ``1..degree`` of their rank
        scaled to [-1, 1] (zero outputs give them equal probabilities: the
        equal-mass bins of a private encoder, its noisy distribution); every
        other token (categories, point masses, missing values) has an output
        of its own. Under DP-SGD every trained parameter adds noise to each
        step; a number's class-dependent shape is learnt from a few
        coefficients instead of a logit per bin."""
        degree = _ORDINAL_DEGREE if degree is None else degree
        rows = []
        for j, size in enumerate(self.sizes):
            rank = self.rank[j, :size]
            ordered = torch.nonzero(rank >= 0).flatten()
            columns = self.offsets[j] + torch.arange(size)
            if len(ordered) > 1:
                x = 2 * rank[ordered] / rank.max() - 1
                for power in range(1, degree + 1):
                    row = torch.zeros(self.n_tokens)
                    row[columns[ordered]] = x**power
                    rows.append(row)
            others = (
                torch.nonzero(rank < 0).flatten() if len(ordered) > 1 else range(size)
            )
            for k in others:
                row = torch.zeros(self.n_tokens)
                row[columns[k]] = 1.0
                rows.append(row)
        return torch.stack(rows)

    def soft_targets(self, width):
        """The training target of every token of every column: one-hot, but a
        number's ordered token spread over its column's ordered tokens by a
        Gaussian of ``width[j]`` ranks for column ``j``: ``(n_columns,
        max_size, max_size)``, the target of column ``j``'s token ``t`` at
        ``[j, t]``. A table, so that a batch's targets are one lookup."""
        rank = self.rank
        distance = rank[:, None, :] - rank[:, :, None]  # (column, token, over)
        kernel = torch.exp(-0.5 * (distance / width[:, None, None]) ** 2)
        ordered = (rank[:, None, :] >= 0) & (rank[:, :, None] >= 0)
        one_hot = torch.eye(self.max_size, device=rank.device).expand_as(kernel)
        kernel = torch.where(ordered, kernel, one_hot)
        return kernel / kernel.sum(2, keepdim=True)

    def bins(self, j):
        return tuple(getattr(self, f"{n}{j}") for n in ("lo", "hi", "exact", "within"))

    def _values(self, rows):
        """Each numeric column's values as the encoder decodes them (clipped,
        rounded), float64, and where they are missing."""
        out = {}
        array = rows.detach().double().cpu().numpy()
        for j, spec in enumerate(self.specs):
            if spec.kind == "categorical":
                continue
            scalar, modes = spec.spans[0], spec.spans[1]
            slot = array[:, modes.start : modes.stop].argmax(1)
            x = torch.as_tensor(decode_numbers(spec, slot, array[:, scalar.start]))
            missing = torch.zeros_like(x, dtype=torch.bool)
            if spec.has_missing:
                span = spec.spans[2]
                missing = array[:, span.start : span.stop].argmax(1) == 1
                missing = torch.as_tensor(missing)
            out[j] = (x.to(rows.device), missing.to(rows.device))
        return out

    def tokenise(self, rows, within=False):
        """Token of every column of model-space ``rows``: ``(n, n_columns)``;
        with ``within``, also the log-density of every row's numbers within
        their bins (``-inf`` for a number outside every bin)."""
        tokens = torch.zeros((len(rows), self.n_columns), dtype=torch.long)
        tokens = tokens.to(rows.device)
        density = torch.zeros(len(rows), dtype=torch.float64, device=rows.device)
        values = self._values(rows)
        for j, spec in enumerate(self.specs):
            if spec.kind == "categorical":
                span = spec.spans[0]
                tokens[:, j] = rows[:, span.start : span.stop].argmax(1)
                continue
            x, missing = values[j]
            lo, hi, exact, log_within = self.bins(j)
            inside = (x[:, None] >= lo) & (x[:, None] <= hi)
            score = inside * (1 + exact.long())  # an exact value before a bin
            token = score.argmax(1)
            fits = inside.any(1) | missing
            token = torch.where(missing, len(lo), token)
            tokens[:, j] = token
            if not within:
                continue
            bin_ = token.clamp_max(len(lo) - 1)
            term = log_within[bin_]
            if self.knots is not None:
                term = torch.where(exact[bin_], 0.0, self._log_density(j, bin_, x))
            term = torch.where(missing, 0.0, term)
            density += torch.where(fits, term, -math.inf)
        return (tokens, density) if within else tokens

    def _log_density(self, j, bin_, x):
        """The log-density of values ``x`` within their bins ``bin_`` of
        numeric column ``j`` under its within-bin quantiles: per unit of the
        column, or per value of the grid of a rounded column (the share of
        the bin within half a step of the value)."""
        knots = getattr(self, f"knots{j}")[bin_]
        step = self.specs[j].step
        if step is None:
            levels = _levels(knots.shape[1] - 1, knots)
            segment = _segment(knots, x)
            width = knots.gather(1, segment[:, None] + 1) - knots.gather(
                1, segment[:, None]
            )
            mass = levels[segment + 1] - levels[segment]
            return torch.log(mass) - torch.log(width.squeeze(1))
        lo, hi = knots[:, 0], knots[:, -1]
        up = _cdf(knots, torch.minimum(x + step / 2, hi))
        down = _cdf(knots, torch.maximum(x - step / 2, lo))
        return torch.log(up - down)

    def allowed(self, j, condition):
        """Which tokens of numeric column ``j`` meet a range condition, and
        their draw regions cut to it: ``(allowed, lo, hi)``."""
        lo, hi, _, _ = self.bins(j)
        low, high = _region(self.specs[j], condition)
        allowed = (lo <= high) & (hi >= low)
        return allowed, lo.clamp_min(low), hi.clamp_max(high)

    def share_in_range(self, j, condition):
        """The share of every token of numeric column ``j`` that lies in a
        range (0 outside it, 1 for a token wholly inside): ``(max_size,)``."""
        allowed, cut_lo, cut_hi = self.allowed(j, condition)
        lo, hi, _, _ = self.bins(j)
        width = hi - lo
        if self.knots is not None:  # the share of its within-bin distribution
            knots = getattr(self, f"knots{j}")
            inner = _cdf(knots, cut_hi) - _cdf(knots, cut_lo)
        else:
            inner = (cut_hi - cut_lo) / width.clamp_min(1e-300)
        share = torch.where(width > 0, inner, 1.0)
        share = torch.where(allowed, share.clamp(0, 1), 0.0).float()
        return F.pad(share, (0, self.max_size - len(share)))

    def detokenise(self, tokens, generator, ranges):
        """Model-space rows for ``tokens``, numbers drawn within their bins
        (within the range of a range condition of ``ranges``)."""
        n = len(tokens)
        width = self.specs[-1].spans[-1].stop
        rows = torch.zeros((n, width), device=tokens.device)
        arange = torch.arange(n, device=tokens.device)
        for j, spec in enumerate(self.specs):
            token = tokens[:, j]
            if spec.kind == "categorical":
                rows[arange, spec.spans[0].start + token] = 1.0
                continue
            lo, hi, _, _ = self.bins(j)
            if j in ranges:
                _, lo, hi = self.allowed(j, ranges[j])
            missing = token == len(lo)
            bin_ = token.clamp_max(len(lo) - 1)
            u = torch.rand(n, generator=generator, device=tokens.device).double()
            lo, hi = lo[bin_], hi[bin_]
            if self.knots is None:
                x = lo + u * (hi - lo)
            else:  # the within-bin distribution, cut to a range condition's
                knots = getattr(self, f"knots{j}")[bin_]
                if j in ranges:
                    low, high = _cdf(knots, lo), _cdf(knots, hi)
                    u = low + u * (high - low)
                x = torch.minimum(torch.maximum(_quantile(knots, u), lo), hi)
            x = torch.where(missing, float(typical(spec)), x)
            _encode_number(spec, x, missing, rows, arange)
        return rows


def _levels(k, like=None):
    """The levels of ``k + 1`` within-bin quantiles: ``(1 - cos(pi t)) / 2``
    for ``t`` evenly spaced in [0, 1], denser towards both ends, so that the
    first and last segments of an outer bin, which reach its extremes, hold
    little of its mass (4% each for 8 segments). The same array at fit
    (where the knots are placed) and at sampling (``like``: on its device)."""
    levels = (1 - np.cos(np.pi * np.linspace(0, 1, k + 1))) / 2
    return levels if like is None else torch.as_tensor(levels, device=like.device)


def _segment(knots, x):
    """The segment of every row's ``knots`` (``(n, k + 1)``, sorted) that
    holds ``x`` (``(n,)``), in ``0 .. k - 1``."""
    k = knots.shape[1] - 1
    found = torch.searchsorted(knots, x[:, None].contiguous(), right=True)
    return (found.squeeze(1) - 1).clamp(0, k - 1)


def _cdf(knots, x):
    """The piecewise-linear cumulative distribution through ``knots`` (the
    quantiles of the levels :func:`_levels`, per row) at ``x``."""
    levels = _levels(knots.shape[1] - 1, knots)
    segment = _segment(knots, x)
    left = knots.gather(1, segment[:, None]).squeeze(1)
    right = knots.gather(1, segment[:, None] + 1).squeeze(1)
    width = right - left
    frac = torch.where(
        width > 0, (x - left) / width.clamp_min(1e-300), (x >= right).double()
    )
    low, high = levels[segment], levels[segment + 1]
    return low + frac.clamp(0, 1) * (high - low)


def _quantile(knots, u):
    """The inverse of :func:`_cdf`: the value of level ``u`` of every row."""
    k = knots.shape[1] - 1
    levels = _levels(k, knots)
    segment = (torch.searchsorted(levels, u, right=True) - 1).clamp(0, k - 1)
    low, high = levels[segment], levels[segment + 1]
    left = knots.gather(1, segment[:, None]).squeeze(1)
    right = knots.gather(1, segment[:, None] + 1).squeeze(1)
    return left + ((u - low) / (high - low)).clamp(0, 1) * (right - left)


def _tensor(array, like):
    return torch.as_tensor(np.asarray(array, dtype=np.float64), device=like.device)


def _encode_number(spec, x, missing, rows, arange):
    """Write values ``x`` of a numeric column into model-space ``rows`` as the
    encoder does. A value drawn within half a step of a point mass (the
    region of its exact token, for a rounded column) is that point."""
    x = x.cpu().numpy()
    points = points_of(spec)
    if len(points) and spec.step is not None:
        near = points[np.abs(x[:, None] - points).argmin(1)]
        x = np.where(np.abs(x - near) <= _HALF * spec.step, near, x)
    slot, offset = (_tensor(a, rows) for a in encode_numbers(spec, x))
    scalar, modes = spec.spans[0], spec.spans[1]
    rows[:, scalar.start] = offset.to(rows.dtype)
    rows[arange, modes.start + slot.long()] = 1.0
    if spec.has_missing:
        rows[arange, spec.spans[2].start + missing.long()] = 1.0


#: powers of a number's token rank that a private model's outputs weigh
#: (see _Tokens.ordinal_basis)
_ORDINAL_DEGREE = 3

_HALF = 0.499  # of a rounding step: draws around a value that round back to it


def _bins(x, n_bins, step, points):
    """The tokens of a numeric column's values ``x``: ``(lo, hi, exact,
    log_within)`` arrays, sorted.

    The encoder's point masses ``points`` (and all values when there are at
    most ``n_bins`` distinct ones) are exact tokens; the other
    values are cut into quantile bins at training values. For a rounded
    column (``step``), a token covers whole steps: its region reaches half a
    step beyond its first and last values, and its within-bin density is per
    value of the grid.
    """
    values, counts = np.unique(x, return_counts=True)
    exact = np.isin(values, points) if len(values) > n_bins else counts > 0
    rest = x[~np.isin(x, values[exact])]
    n_rest = len(np.unique(rest))
    if n_rest and (n_rest <= n_bins - exact.sum() or n_rest < 2):  # few: exact too
        exact |= np.isin(values, rest)
        rest = rest[:0]
    points = values[exact]
    edges = np.zeros(0)
    if len(rest):
        quantiles = np.linspace(0, 1, max(n_bins - len(points), 1) + 1)
        edges = np.unique(np.quantile(rest, quantiles, method="inverted_cdf"))
    half = _HALF * step if step is not None else 0.0
    lo = np.concatenate([points - half, edges[:-1] - half])
    if step is None:
        hi = np.concatenate([points, edges[1:]])
        within = np.concatenate([np.zeros(len(points)), -np.log(np.diff(edges))])
    else:
        # a bin's last value is one step before the next bin's first
        last = np.concatenate([edges[1:-1] - step, edges[-1:]])
        hi = np.concatenate([points + half, last + half])
        grid = np.round((last - edges[:-1]) / step) + 1
        within = np.concatenate([np.zeros(len(points)), -np.log(grid)])
    is_exact = np.concatenate(
        [np.ones(len(points), bool), np.zeros(len(lo) - len(points), bool)]
    )
    order = np.argsort(lo, kind="stable")
    return lo[order], hi[order], is_exact[order], within[order]


#: the most within-bin quantile segments of a numeric token
_MAX_SEGMENTS = 8
#: how far the within-bin knots of a continuous column move towards equal
#: spacing: a floor on every segment's width (a tie of training values is no
#: infinite density); a rounded column's values already fill their steps
_UNIFORM_SHARE = 1e-3


def _within_knots(x, bins, step):
    """The quantiles of a numeric column's training values ``x`` within each
    of its tokens ``bins`` (as :func:`_bins` gives): ``(n_tokens, k + 1)``,
    the levels ``0, 1 / k, .., 1``, from the token's ``lo`` to its ``hi``.

    ``k`` grows with the rows per token, ``sqrt(rows / tokens)``, at most
    ``_MAX_SEGMENTS`` (1: a uniform draw, for a small table, whose few rows
    per bin would otherwise be copied); the levels are :func:`_levels`. A
    rounded column's value stands for the whole step around it (its
    quantiles are those of the values spread evenly over their steps, so
    that rounding gives the values back in their proportions); exact tokens
    keep a uniform draw over their region. A continuous column's knots move
    ``_UNIFORM_SHARE`` of the way towards those of a uniform draw.
    """
    lo, hi, exact, _ = bins
    k = int(np.clip(np.sqrt(len(x) / max(len(lo), 1)), 1, _MAX_SEGMENTS))
    levels = _levels(k)
    even = lo[:, None] + levels * (hi - lo)[:, None]
    if k == 1 or not len(x):
        return even
    # every value's token, as _Tokens.tokenise finds it
    inside = (x[:, None] >= lo) & (x[:, None] <= hi)
    token = (inside * (1 + exact)).argmax(1)
    order = np.lexsort((x, token))
    token, value = token[order], x[order]
    counts = np.bincount(token, minlength=len(lo))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if step is None:  # linear between the order statistics
        position = starts[:, None] + levels * np.maximum(counts - 1, 0)[:, None]
        below = np.floor(position).astype(np.int64).clip(0, max(len(x) - 1, 0))
        above = np.minimum(below + 1, np.maximum(starts + counts - 1, 0)[:, None])
        frac = position - below
        knots = value[below] * (1 - frac) + value[above] * frac
    else:  # every value spread over its step, ties one after another
        new = np.concatenate(
            [[True], (token[1:] != token[:-1]) | (value[1:] != value[:-1])]
        )
        group = np.cumsum(new) - 1
        group_start = np.flatnonzero(new)
        ties = np.diff(np.concatenate([group_start, [len(x)]]))[group]
        tie_rank = np.arange(len(x)) - group_start[group]
        position = levels * counts[:, None]  # rows below, within the token
        row = np.floor(position).astype(np.int64)
        row = np.minimum(row, np.maximum(counts - 1, 0)[:, None])
        frac = (position - row).clip(0, 1)
        i = (starts[:, None] + row).clip(0, len(x) - 1)
        knots = value[i] - step / 2 + (tie_rank[i] + frac) / ties[i] * step
    knots = np.clip(knots, lo[:, None], hi[:, None])
    knots[:, 0], knots[:, -1] = lo, hi
    if step is None:
        knots = (1 - _UNIFORM_SHARE) * knots + _UNIFORM_SHARE * even
    # exact tokens and empty ones: uniform over their region
    return np.where((exact | (counts == 0))[:, None], even, knots)


def _private_bins(specs, n_bins):
    """The tokens of every numeric column under differential privacy, from
    the private encoder alone (``{column index: (lo, hi, exact,
    log_within)}``, as :func:`_bins` gives): ``n_bins`` bins of equal mass
    under the column's noisy cumulative distribution (``warp_x``,
    ``warp_u``), or of equal width over its range where no distribution was
    released. A rounded column's bins start at the values of its grid where
    those quantiles fall, so that a column of few values (a 0/1 column, a
    count) gets a token per value. The bins cover the encoder's whole range
    without gaps, so every value the encoding holds has a token; there are
    no exact tokens (a private encoder has no point masses)."""
    out = {}
    for j, spec in enumerate(specs):
        if spec.kind == "categorical":
            continue
        u = np.linspace(-1, 1, n_bins + 1)
        if spec.warp_x is not None:
            edges = np.interp(u, spec.warp_u, spec.warp_x)
        else:
            edges = np.linspace(spec.low, spec.high, n_bins + 1)
        step = spec.step
        if step is not None:  # whole steps, as _bins cuts a rounded column
            starts = np.unique(np.round(edges[:-1] / step) * step)
            end = np.round(edges[-1] / step) * step
            last = np.concatenate([starts[1:] - step, [end]])
            lo, hi = starts - _HALF * step, last + _HALF * step
            within = -np.log(np.round((last - starts) / step) + 1)
        elif edges[-1] > edges[0]:
            edges = np.unique(edges)
            lo, hi, within = edges[:-1], edges[1:], -np.log(np.diff(edges))
        else:  # a constant: a single token
            lo, hi, within = edges[:1], edges[:1], np.zeros(1)
        out[j] = (lo, hi, np.zeros(len(lo), bool), within)
    return out


def _token_masses(spec, bins):
    """The share of a numeric column's private distribution in each of its
    bins: under its noisy cumulative distribution, or uniform over its range
    where none was released (post-processing of the release)."""
    lo, hi, _, _ = bins
    lo, hi = np.clip(lo, spec.low, spec.high), np.clip(hi, spec.low, spec.high)
    if spec.warp_x is not None:
        lo, hi = (np.interp(v, spec.warp_x, spec.warp_u) for v in (lo, hi))
        width = 2.0
    else:
        width = spec.high - spec.low
    if width <= 0:
        return np.full(len(lo), 1 / len(lo))
    return (hi - lo) / width


def _region(spec, condition):
    """The region that values of a range condition are drawn from: its
    bounds, or half a step beyond them for a rounded column."""
    half = _HALF * spec.step if spec.step is not None else 0.0
    return condition.low - half, condition.high + half


# ======================================================================
# the network
# ======================================================================
class _AnyOrder(nn.Module):
    """Predicts every column's token from the label and the known tokens."""

    mlp_embedding = 16

    def __init__(self, tokens, n_classes, network, width, depth, heads, private=False):
        super().__init__()
        self.tokens, self.network = tokens, network
        n_columns = tokens.n_columns
        # one mask token per column after the vocabulary; the MLP reads the
        # embeddings side by side, so short ones keep its input narrow
        embedding = width if network == "transformer" else self.mlp_embedding
        # under differential privacy, a number's ordered tokens share a few
        # outputs (and embeddings): the coefficients of a polynomial in their
        # rank (see _Tokens.ordinal_basis). None: a vector per token
        basis = tokens.ordinal_basis() if private else None
        self.register_buffer("basis", basis, persistent=False)
        n_out = tokens.n_tokens if basis is None else len(basis)
        # under differential privacy, every token's log-probability in the
        # private release, per class, added to its logit (see start_at)
        prior = torch.zeros((max(n_classes, 1), tokens.n_tokens)) if private else None
        self.register_buffer("prior", prior)
        self.embed = nn.Embedding(n_out + n_columns, embedding)
        self.label = nn.Embedding(max(n_classes, 1), embedding)
        if network == "transformer":
            self.position = nn.Embedding(n_columns, width)
            self.blocks = nn.ModuleList(
                _Block(width, heads, explicit=private) for _ in range(depth)
            )
            self.norm = nn.LayerNorm(width)
            self.out = nn.Linear(width, n_out)  # a vector per token (or output)
        else:
            inputs = (n_columns + 1) * embedding
            self.body = mlp(inputs, [width] * depth, n_out, norm=False)
        self.register_buffer("mask_ids", tokens.n_tokens + torch.arange(n_columns))

    def log_probs(self, tokens, known, labels, columns=None):
        """Log-probabilities of every column's tokens: ``(n, n_columns,
        max_size)``, about ``_PADDING`` on padding. Unknown columns are
        masked. With ``columns`` (a LongTensor of shape ``(n,)``), only those
        of one column per row: ``(n, max_size)``."""
        ids = torch.where(known, tokens + self.tokens.vocabulary[:, 0], self.mask_ids)
        table = self.embed.weight
        if self.basis is not None:  # the tokens' embeddings from the outputs'
            n_out = len(self.basis)
            table = torch.cat([self.basis.T @ table[:n_out], table[n_out:]])
        h = F.embedding(ids, table)
        if labels is None:
            labels = torch.zeros(len(ids), dtype=torch.long, device=ids.device)
        label = self.label(labels)
        vocabulary, valid = self.tokens.vocabulary, self.tokens.valid
        if columns is not None:
            vocabulary, valid = vocabulary[columns], valid[columns]
        if self.network == "transformer":
            h = torch.cat([label[:, None], h + self.position.weight], dim=1)
            for block in self.blocks:
                h = block(h)
            h = self.norm(h[:, 1:])
            weight, bias = self.out.weight, self.out.bias
            if self.basis is not None:  # a vector per token, from the outputs'
                weight, bias = self.basis.T @ weight, bias @ self.basis
            weight, bias = weight[vocabulary], bias[vocabulary]
            if columns is None:  # weight: (n_columns, max_size, width)
                logits = torch.einsum("ncd,cvd->ncv", h, weight) + bias
            else:  # weight: (n, max_size, width)
                h = h[torch.arange(len(h), device=h.device), columns]
                logits = torch.einsum("nd,nvd->nv", h, weight) + bias
        else:
            logits = self.body(torch.cat([label, h.flatten(1)], dim=1))
            if self.basis is not None:
                logits = logits @ self.basis
            if columns is not None:
                logits = logits.gather(1, vocabulary)
            else:  # index_select: its backward adds, and need not sort
                picked = logits.index_select(1, vocabulary.flatten())
                logits = picked.view(len(logits), *vocabulary.shape)
        if self.prior is not None:
            prior = self.prior[labels]
            logits = logits + (
                prior.gather(1, vocabulary)
                if columns is not None
                else prior[:, vocabulary]
            )
        # float32 under autocast too: the likelihoods and the tokens drawn
        logits = logits.float().masked_fill(~valid, _PADDING)
        return torch.log_softmax(logits, dim=-1)

    def start_at(self, specs, bins, conditioning):
        """Under differential privacy: every token's log-probability in the
        private release as a fixed term of its logit. A category's within
        each class (the conditioning's noisy frequencies), a number's bin
        its share of the column's noisy distribution (:func:`_token_masses`;
        the equal-mass bins of a continuous column share it evenly, a
        rounded column of few values does not), a missing-value token one
        token's share. Post-processing of the release: no row is read."""
        counts = conditioning.counts.double().cpu()  # (discrete, width, classes)
        prior = torch.zeros(self.prior.shape, dtype=torch.float64)
        discrete = 0
        for j, spec in enumerate(specs):
            size, start = self.tokens.sizes[j], self.tokens.offsets[j]
            if spec.kind == "categorical":
                count = counts[discrete, :size]
                share = count / count.sum(0, keepdim=True).clamp_min(1e-12)
                prior[:, start : start + size] = share.clamp_min(1e-3).log().T
                discrete += 1
                continue
            masses = torch.as_tensor(_token_masses(spec, bins[j]))
            masses = masses.clamp_min(1e-6) / masses.clamp_min(1e-6).sum()
            prior[:, start : start + len(masses)] = masses.log()
            if size > len(masses):  # the missing token
                prior[:, start + len(masses)] = -math.log(size)
        self.prior.copy_(prior.float())

    def sample(self, labels, generator, conditions):
        """Tokens column by column (conditions first, then a random order
        per row), then model-space rows."""
        n, n_columns, device = len(labels), self.tokens.n_columns, labels.device
        tokens = torch.zeros((n, n_columns), dtype=torch.long, device=device)
        known = torch.zeros_like(tokens, dtype=torch.bool)
        allowed = self.tokens.valid.clone()
        ranges = {}
        priority = torch.rand((n, n_columns), generator=generator, device=device)
        for condition in conditions:
            j = self.tokens.index(condition.column)
            if _is_range(condition):
                ranges[j] = condition
                cut, _, _ = self.tokens.allowed(j, condition)
                allowed[j] = False
                allowed[j, : len(cut)] = cut
                priority[:, j] -= 1  # drawn before the free columns
            else:
                tokens[:, j], known[:, j] = condition.slot, True
                priority[:, j] -= 2
        order = priority.argsort(1)
        arange = torch.arange(n, device=device)
        for t in range(len(conditions) - len(ranges), n_columns):
            column = order[:, t]
            log_probs = self.log_probs(tokens, known, labels, column)
            probs = (log_probs.exp() + 1e-12) * allowed[column]
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            tokens[arange, column] = token
            known[arange, column] = True
        return self.tokens.detokenise(tokens, generator, ranges)

    def log_likelihood(self, tokens, labels):
        """Sum of every column's log-probability given those before it (in
        table order), per row, in blocks of rows."""
        out = []
        for start in range(0, len(tokens), 4096):
            block = tokens[start : start + 4096]
            label = None if labels is None else labels[start : start + 4096]
            total = torch.zeros(len(block), device=block.device)
            known = torch.zeros_like(block, dtype=torch.bool)
            for j in range(block.shape[1]):
                column = torch.full_like(block[:, 0], j)
                log_probs = self.log_probs(block, known, label, column)
                total += log_probs.gather(1, block[:, j : j + 1]).squeeze(1)
                known[:, j] = True
            out.append(total)
        return torch.cat(out) if out else torch.zeros(0, device=tokens.device)


class _Block(nn.Module):
    """A pre-norm transformer block: self-attention, then a feed-forward layer."""

    def __init__(self, width, heads, explicit=False):
        super().__init__()
        self.heads, self.explicit = heads, explicit
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.feed = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )

    def forward(self, h):
        n, length, width = h.shape
        qkv = self.qkv(self.norm1(h)).view(n, length, 3, self.heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if self.explicit:  # the same attention, spelt out for vmap's batching
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
            attended = torch.softmax(scores, dim=-1) @ v
        else:
            attended = F.scaled_dot_product_attention(q, k, v)  # no dropout
        h = h + self.proj(attended.transpose(1, 2).reshape(n, length, width))
        return h + self.feed(self.norm2(h))

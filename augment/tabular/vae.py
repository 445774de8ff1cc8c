"""TabularVAE: a conditional variational auto-encoder for mixed-type tables."""

import math
import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .._docstrings import fill_doc
from .._validation import positive_ints
from ..nn import gaussian_latent, init_parameters, mlp, update
from ..nn.privacy import DP_SGD_SETTINGS
from .generator import DP_CONSTRAINTS, TabularGenerator


@fill_doc
class TabularVAE(TabularGenerator):
    """Conditional variational auto-encoder for tables, as an over-sampler.

    The table is encoded by :class:`~augment.tabular.TableEncoder` (mode-specific
    normalisation of numbers, one-hot categories, missing values). An encoder
    network maps a row and its condition vector to a Gaussian latent code; a
    decoder maps a code and the condition vector back to a row: a Gaussian for
    every scalar (with a learnt scale) and a categorical distribution for
    every one-hot group. The condition vector holds the class and the values
    of a random subset of the row's discrete columns (a different subset for
    every row and step, from none to all), so that the decoder learns to
    generate rows given any of them. Sampling decodes latent codes with the
    classes and values asked for: class counts and conditions are exact,
    never rejection-sampled. The codes come from the prior, or
    (``latent_sampling``) from near the training rows of the class asked for.

    Under differential privacy (``dp_epsilon``), the whole network is
    trained by DP-SGD.

    Parameters
    ----------
    %(sampling_strategy)s
    %(enlarge)s
    %(rules)s
    latent_dim : int or None, default=None
        Size of the latent code. None: 16, or 2 under differential privacy
        (see ``training_settings_``).
    hidden_dims : tuple of int or None, default=None
        Widths of the hidden layers of the encoder and of the decoder. None:
        ``(128, 128)``, or ``(32,)`` under differential privacy (see
        ``training_settings_``).
    %(epochs)s
    %(batch_size)s
    %(learning_rate)s
    weight_decay : float, default=1e-5
        Adam's L2 penalty.
    reconstruction_weight : float, default=2.0
        Weight of the reconstruction term against the KL divergence; above 1
        favours faithful rows over a smooth latent space.
    latent_sampling : {"prior", "posterior", "interpolate"}, default="prior"
        Where the latent codes of sampled rows come from. ``"prior"``: the
        standard normal prior. ``"posterior"``: the posterior of a random
        training row of the class asked for (its mean plus its noise).
        ``"interpolate"``: a random point on the segment between the
        posterior means of two random training rows of the class (SMOTE in
        the latent space: new rows stay near the class's own rows). Both
        keep the posterior means of the training rows (``latent_bank_``);
        they are not allowed under differential privacy, which only the
        prior keeps.
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
        The trained network.
    %(history_)s
        The losses: ``loss``, ``reconstruction``, ``kl``.
    latent_bank_ : ndarray of shape (n_rows, 2 * latent_dim) or None
        With ``latent_sampling`` other than ``"prior"``: the posterior mean
        and log-variance of every training row, ordered by class.
    latent_bank_counts_ : ndarray of shape (n_classes,) or None
        Rows of each class in ``latent_bank_`` (one count without classes).
    %(tabular_attributes)s
    %(target_attributes)s
    %(privacy_attributes)s

    See Also
    --------
    TabularGAN : A conditional GAN on the same encoding.
    TableEncoder : The encoding of tables the model works on.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from augment import TabularVAE
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> gen = TabularVAE(epochs=5, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(10, y=2)
    >>> X_new.shape, y_new.value_counts().to_dict()
    ((10, 4), {2: 10})
    >>> vae = TabularVAE(epochs=5, random_state=0)
    >>> X_res, y_res = vae.fit_resample(X[:120], y[:120])
    >>> y_res.value_counts().to_dict()
    {0: 50, 1: 50, 2: 50}
    """

    _parameter_constraints = {
        **TabularGenerator._parameter_constraints,
        **DP_CONSTRAINTS,
        "latent_dim": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_dims": [None, positive_ints()],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "reconstruction_weight": [Interval(numbers.Real, 0, None, closed="neither")],
        "latent_sampling": [StrOptions({"prior", "posterior", "interpolate"})],
    }

    # measured on credit_data and breast cancer: as good as more steps. The
    # budget holds on small tables too: capped at 120 epochs, a table of up to
    # 256 rows (one batch an epoch) trained for 120 steps only, and its
    # synthetic minority rows fell on the wrong side of the class boundary
    # (small-data benchmark: docs/small_data.rst)
    _default_steps = 600
    _default_epoch_bounds = (30, 600)
    _settings = {
        "batch_size": 256,
        "learning_rate": 5e-3,
        "latent_dim": 16,
        "hidden_dims": (128, 128),
    }
    _private_settings = DP_SGD_SETTINGS | {"latent_dim": 2, "hidden_dims": (32,)}

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        rules="auto",
        latent_dim=None,
        hidden_dims=None,
        epochs=None,
        batch_size=None,
        learning_rate=None,
        weight_decay=1e-5,
        reconstruction_weight=2.0,
        latent_sampling="prior",
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
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.reconstruction_weight = reconstruction_weight
        self.latent_sampling = latent_sampling
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.max_grad_norm = max_grad_norm
        self.dp_bounds = dp_bounds
        self.dp_categories = dp_categories
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def _build_modules(self, init):
        module = _ConditionalVAE(
            self._layout(),
            self.conditioning_,
            self.training_settings_["latent_dim"],
            self.training_settings_["hidden_dims"],
            private=self.dp_epsilon is not None,
        )
        self.module_ = init_parameters(module, init)

    def _fit(self, data, x_format, y_info):
        if self.dp_epsilon is not None and self.latent_sampling != "prior":
            raise ValueError(
                f"latent_sampling={self.latent_sampling!r} keeps the posterior of "
                "every training row, which differential privacy does not allow; "
                'use latent_sampling="prior" with dp_epsilon.'
            )
        super()._fit(data, x_format, y_info)

    def _train(self, data, labels, generator):
        conditioning = self.conditioning_
        self._build_modules(self._init_generator())
        moments = vars(self).pop("_private_moments", None)
        if moments is not None:  # the noisy marginals (post-processing)
            self.module_.start_at(moments, self.conditioning_)
        module = self.module_ = self.module_.to(data.device)
        optimiser = torch.optim.Adam(
            module.parameters(),
            lr=self.training_settings_["learning_rate"],
            weight_decay=self.weight_decay,
            fused=data.device.type in ("cpu", "cuda"),  # one kernel for all parameters
        )

        hot = module.layout.hot_columns(data)
        codes = conditioning.codes_of(data)

        def show(n):
            # each row shows a random share of its discrete values (none to all)
            random = dict(generator=generator, device=data.device)
            if not conditioning.n_discrete:
                return torch.zeros((n, 0), dtype=torch.bool, device=data.device)
            share = torch.rand((n, 1), **random)
            return torch.rand((n, conditioning.n_discrete), **random) < share

        def losses(module, x, hot, condition):
            reconstruction, kl = module.losses(x, hot, condition, generator)
            loss = self.reconstruction_weight * reconstruction + kl
            return {"loss": loss, "reconstruction": reconstruction, "kl": kl}

        def step(index):
            shown = show(len(index))
            label = None if labels is None else labels[index]
            condition = conditioning.vector(codes[index], shown, label)
            rows = (data[index], hot[index], condition)
            if private is None:
                found = losses(module, *rows)
                update(optimiser, found["loss"])
                return found
            # DP-SGD on the whole model; its losses on real rows are not
            # released (history_ holds epochs only)
            optimiser.zero_grad(set_to_none=True)
            private(*rows)
            optimiser.step()
            return {}

        private = None
        if self._privacy is not None:
            private = self._private_gradient(
                module,
                lambda module, *rows: losses(module, *rows)["loss"],
                len(data),
                generator,
                "DP-SGD on the whole VAE",
            )

        module.train()
        history = self._run_epochs(step, len(data), generator)
        module.eval()
        self.latent_bank_ = self.latent_bank_counts_ = None
        if self.latent_sampling != "prior":
            self._fit_latent_bank(data, codes, labels)
        return history

    @torch.no_grad()
    def _fit_latent_bank(self, data, codes, labels):
        """The posterior (mean, log-variance) of every training row given its
        class and no discrete values, ordered by class."""
        shown = torch.zeros_like(codes, dtype=torch.bool)
        condition = self.conditioning_.vector(codes, shown, labels)
        posterior = self.module_.encoder(torch.cat([data, condition], dim=1))
        if labels is None:
            order, counts = torch.arange(len(data)), np.array([len(data)])
        else:
            order = torch.argsort(labels, stable=True).cpu()
            counts = np.bincount(labels.cpu().numpy(), minlength=len(self.classes_))
        self.latent_bank_ = posterior.cpu()[order].numpy()
        self.latent_bank_counts_ = counts

    def _generate(self, labels, n_samples, generator, conditions=()):
        # the decoder is shown the asked values only, then they are written in
        conditioning = self.conditioning_
        codes, shown = conditioning.fixed(n_samples, conditions, generator.device)
        condition = conditioning.vector(codes, shown, labels)
        z = (
            None
            if self.latent_sampling == "prior"
            else self._bank_codes(labels, n_samples, generator)
        )
        rows = self.module_.eval().sample(condition, generator, z)
        return conditioning.overwrite(rows, codes, shown)

    def _bank_codes(self, labels, n_samples, generator):
        """Latent codes near the training rows of each row's class."""
        device = generator.device
        bank = torch.as_tensor(self.latent_bank_, device=device)
        counts = torch.as_tensor(self.latent_bank_counts_, device=device)
        starts = counts.cumsum(0) - counts
        if labels is None:
            labels = torch.zeros(n_samples, dtype=torch.long, device=device)
        size, start = counts[labels], starts[labels]

        def pick():
            u = torch.rand(n_samples, generator=generator, device=device)
            return bank[start + (u * size).long().clamp(max=size - 1)].chunk(2, dim=1)

        mean, log_var = pick()
        if self.latent_sampling == "posterior":
            noise = torch.randn(mean.shape, generator=generator, device=device)
            return mean + noise * (0.5 * log_var).exp()
        other, _ = pick()
        share = torch.rand((n_samples, 1), generator=generator, device=device)
        return mean + share * (other - mean)


class _ConditionalVAE(nn.Module):
    def __init__(self, layout, conditioning, latent_dim, hidden_dims, private=False):
        super().__init__()
        self.layout, self.latent_dim, self.private = layout, latent_dim, private
        width, condition_width = layout.width, conditioning.width
        self.n_classes = conditioning.n_classes
        # under differential privacy with classes, added to the decoder's
        # output for each class: the noisy log-ratios p(value | class) /
        # p(value); None otherwise (no work in the decoder, nothing in the file)
        has_term = private and self.n_classes
        term = torch.zeros((self.n_classes, width)) if has_term else None
        self.register_buffer("class_logits", term)
        self.encoder = mlp(
            width + condition_width, hidden_dims, 2 * latent_dim, norm=False
        )
        self.decoder = mlp(latent_dim + condition_width, hidden_dims, width, norm=False)
        self.log_sigma = nn.Parameter(torch.full((width,), math.log(0.1)))

    def start_at(self, moments, conditioning):
        """Start at the marginals: the decoder's one-hot groups start at the
        model-space means ``moments[0]``, the scale of a scalar at its spread
        ``moments[1]`` where known (finite), and each class adds the log-ratio
        ``p(value | class) / p(value)`` of every discrete value, from the
        conditioning's frequencies (noisy ones, under differential privacy)."""
        self.layout.start_groups(self.decoder[-1].bias, moments[0])
        with torch.no_grad():
            # the scalars' scale starts at their known spread: the few steps
            # of DP-SGD could not take it from 0.1 to a uniform's 0.58 (half
            # the spread: no better train-on-synthetic ratio on CPS1988 with
            # benchmarks/dp.py, lower fidelity)
            scalars = self.layout.scalar_index.cpu()
            spread = torch.as_tensor(moments[1], dtype=torch.float32)[scalars]
            known = spread.isfinite()
            self.log_sigma[scalars[known]] = spread[known].clamp(0.01, 1.0).log()
            if self.class_logits is None:
                return
            counts = conditioning.counts.double()  # (discrete, width, classes)
            p_class = counts / counts.sum(1, keepdim=True).clamp_min(1e-12)
            p_all = counts.sum(2, keepdim=True) / counts.sum((1, 2), keepdim=True)
            ratio = (p_class.clamp_min(1e-3) / p_all.clamp_min(1e-3)).log()
            block = conditioning.block  # the discrete column of each entry
            slot = torch.arange(len(block)) - conditioning.offsets[block]
            self.class_logits[:, conditioning.columns] = ratio[block, slot].T.float()

    def _with(self, x, condition):
        return torch.cat([x, condition], dim=1)

    def _decode(self, z, condition):
        # float32 under autocast too: the likelihoods and the rows drawn
        raw = self.decoder(self._with(z, condition)).float()
        if self.class_logits is not None:  # the class term, fixed (see start_at)
            raw = raw + condition[:, -self.n_classes :].float() @ self.class_logits
        return raw

    def _sigma(self):
        # bounded below so that the scalar likelihood cannot collapse onto a point
        return self.log_sigma.exp().clamp(0.01, 1.0)

    def losses(self, x, hot, condition, generator):
        """Reconstruction negative log-likelihood and KL divergence, per row.

        ``hot`` holds the column of the hot entry of each one-hot group of ``x``.
        """
        code = self.encoder(self._with(x, condition)).float()
        mean, log_var = code.chunk(2, dim=1)
        z, kl = gaussian_latent(mean, log_var, generator)
        raw = self._decode(z, condition)
        scalars = self.layout.scalar_index
        sigma = self._sigma()[scalars]
        error = (x[:, scalars] - torch.tanh(raw[:, scalars])) ** 2
        gaussian = (error / (2 * sigma**2) + sigma.log()).sum() / len(x)
        reconstruction = gaussian + self.layout.cross_entropy(raw, hot)
        return reconstruction, kl

    def sample(self, condition, generator, z=None):
        n_samples, device = len(condition), generator.device
        if z is None:
            z = torch.randn(
                (n_samples, self.latent_dim), generator=generator, device=device
            )
        raw = self._decode(z, condition)
        out = torch.zeros_like(raw)
        scalars = self.layout.scalar_index
        noise = torch.randn(
            (n_samples, len(scalars)), generator=generator, device=device
        )
        values = torch.tanh(raw[:, scalars]) + noise * self._sigma()[scalars]
        if self.private:  # reflected into [-1, 1]: no pile-ups at the ends of
            # numbers encoded by their CDF, whose scale starts wide
            values = 1 - (values + 1).remainder(4).sub(2).abs()
        out[:, scalars] = values.clamp(-1, 1)
        return self.layout.sample_groups(raw, generator, out)

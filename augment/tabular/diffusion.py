"""TabularDiffusion: a conditional diffusion model for mixed-type tables."""

import numbers

import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from .._docstrings import fill_doc
from .._validation import positive_ints
from ..nn import (
    cosine_schedule,
    in_blocks,
    init_parameters,
    mlp,
    parallel,
    time_embedding,
    update,
)
from .generator import TabularGenerator


@fill_doc
class TabularDiffusion(TabularGenerator):
    """Conditional diffusion model for tables (the TabDDPM / TabDiff family).

    The table is encoded by :class:`~augment.tabular.TableEncoder` (mode-specific
    normalisation of numbers, one-hot categories, missing values), and the
    model diffuses that encoding, with one time ``t`` in [0, 1] for the whole
    row:

    * the scalar of every number (standardised) follows a Gaussian diffusion
      with a cosine schedule, ``x_t = cos(pi t / 2) x_0 + sin(pi t / 2) noise``;
    * every one-hot group (the mode of a number, a category, a missing-value
      indicator) follows a masked (absorbing-state) diffusion: each group is
      hidden with probability ``t``.

    One network (an MLP given the noisy scalars, the visible groups, which
    groups are hidden, a sinusoidal embedding of ``t`` and the condition)
    predicts the velocity of the scalars and the logits of the hidden groups.
    The condition is the class of the row and values of discrete columns;
    it is dropped for a share of the training rows, so that the same network
    also learns the unconditional model, for classifier-free guidance.

    Sampling runs a few-step sampler from ``t = 1`` (pure noise, every group
    hidden) to ``t = 0``: deterministic DDIM steps for the scalars, and at
    each step a share of the hidden groups is revealed by a draw from the
    predicted probabilities. Groups of the columns conditioned on are visible
    from the start and never change, so the rest of the row is generated
    consistently with them; class counts and conditions are exact, never
    rejection-sampled.

    Parameters
    ----------
    %(sampling_strategy)s
    %(enlarge)s
    %(rules)s
    hidden_dims : tuple of int, default=(256, 256)
        Widths of the denoising network's hidden layers.
    sampling_steps : int, default=30
        Steps of the sampler from noise to rows. Fewer are faster, more follow
        the learnt model more closely.
    guidance_scale : float, default=1.0
        Classifier-free guidance: the network's output is
        ``unconditional + guidance_scale * (conditional - unconditional)``.
        1 is the plain conditional model (one network pass per step); 0
        ignores the class and the conditions in the network (the rows follow
        the whole table; conditioned values are still written in); above 1
        the rows are more typical of their class and conditions, at some loss
        of diversity. Other values than 1 cost two passes per step.
    condition_dropout : float, default=0.1
        Share of the training rows whose condition is hidden from the network,
        which so learns the unconditional model used by guidance.
    %(epochs)s
    %(batch_size)s
    learning_rate : float, default=2e-3
        Adam's step size, decayed linearly to zero over the training.
    %(device)s
    %(precision)s
    %(random_state)s
    %(verbose)s

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained denoising network.
    %(history_)s
        The losses: ``loss`` (their sum), ``scalars`` (squared error of the
        scalars' velocity) and ``groups`` (cross-entropy of the hidden one-hot
        groups).
    %(tabular_attributes)s
    %(target_attributes)s

    See Also
    --------
    TabularVAE : A conditional variational auto-encoder on the same encoding.
    TabularGAN : A conditional GAN on the same encoding.
    TableEncoder : The encoding of tables the model works on.

    Notes
    -----
    The scalars' process is the variance-preserving one of Ho et al. (2020)
    with the cosine schedule of Nichol & Dhariwal (2021), v-prediction
    (Salimans & Ho, 2022) and DDIM's deterministic sampler (Song et al.,
    2021); the groups' process is masked diffusion (Austin et al., 2021;
    Sahoo et al., 2024), as in TabDiff (Shi et al., 2025). Guidance is that
    of Ho & Salimans (2022).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.datasets import load_iris
    >>> from augment import TabularDiffusion
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> X["size"] = pd.cut(X["petal length (cm)"], 3, labels=["S", "M", "L"])
    >>> gen = TabularDiffusion(epochs=5, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(10, y=2, conditions={"size": "L"})
    >>> X_new["size"].value_counts().to_dict(), y_new.value_counts().to_dict()
    ({'L': 10, 'S': 0, 'M': 0}, {2: 10})
    """

    _parameter_constraints = {
        **TabularGenerator._parameter_constraints,
        "hidden_dims": [positive_ints()],
        "sampling_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "guidance_scale": [Interval(numbers.Real, 0, None, closed="left")],
        "condition_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    _default_steps = 1000
    _default_epoch_bounds = (5, 1000)

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        rules="auto",
        hidden_dims=(256, 256),
        sampling_steps=30,
        guidance_scale=1.0,
        condition_dropout=0.1,
        epochs=None,
        batch_size=256,
        learning_rate=2e-3,
        device="cpu",
        precision="auto",
        random_state=None,
        verbose=0,
    ):
        self.sampling_strategy = sampling_strategy
        self.enlarge = enlarge
        self.rules = rules
        self.hidden_dims = hidden_dims
        self.sampling_steps = sampling_steps
        self.guidance_scale = guidance_scale
        self.condition_dropout = condition_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _build_modules(self, init, data=None):
        layout = self._layout()
        if data is None:  # the scalars' scale comes with the saved weights
            data = torch.zeros((0, layout.width))
        module = _Denoiser(layout, self.conditioning_, data, self.hidden_dims)
        self.module_ = init_parameters(module, init)

    def _train(self, data, labels, generator):
        conditioning, device = self.conditioning_, data.device
        self._build_modules(self._init_generator(), data)
        module = self.module_
        module.to(device).train()
        optimiser = torch.optim.Adam(
            module.parameters(),
            lr=self.learning_rate,
            fused=device.type in ("cpu", "cuda"),  # one kernel for all parameters
        )
        n_rows = parallel.minimum(len(data))  # the same on every rank
        settings = self.training_settings_
        n_steps = settings["epochs"] * max(n_rows // settings["batch_size"], 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda i: max(1.0 - i / n_steps, 0.0)
        )
        codes = conditioning.codes_of(data)
        hot = module.layout.hot_slots(data)  # slot of each group

        def losses(index, generator):
            n = len(index)
            random = dict(generator=generator, device=device)
            # show a random subset of the discrete columns as conditions (none
            # for half the rows); hide the whole condition for some rows
            rate = torch.rand((n, 1), **random) * (torch.rand((n, 1), **random) < 0.5)
            shown = torch.rand((n, conditioning.n_discrete), **random) < rate
            label = None if labels is None else labels[index]
            condition = conditioning.vector(codes[index], shown, label)
            dropped = torch.rand((n, 1), **random) < self.condition_dropout
            condition = condition * ~dropped
            scalars, groups = module.losses(
                data[index], hot[index], shown, condition, generator
            )
            return {"loss": scalars + groups, "scalars": scalars, "groups": groups}

        def step(index):
            found = losses(index, generator)
            update(optimiser, found["loss"])
            schedule.step()
            return found

        # the whole budget, on every row: no early stopping on a held-out loss
        # (on breast cancer that loss is best after 100 to 160 of the 1000
        # steps, while the rows keep getting harder to tell from real ones,
        # held-out real ones included, to the end of the budget)
        history = self._run_epochs(step, len(data), generator)
        module.eval()
        return history

    # ------------------------------------------------------------ sampling
    def _generate(self, labels, n_samples, generator, conditions=()):
        module, conditioning = self.module_.eval(), self.conditioning_
        device = generator.device
        codes, shown = conditioning.fixed(n_samples, conditions, device)
        condition = conditioning.vector(codes, shown, labels)
        # the conditioned groups hold their value from the start
        start = torch.zeros((n_samples, module.layout.width), device=device)
        start = conditioning.overwrite(start, codes, shown)

        def block(start, shown, condition):
            steps, guidance = self.sampling_steps, self.guidance_scale
            return module.sample(start, shown, condition, steps, guidance, generator)

        return in_blocks(block, start, shown, condition)


class _Denoiser(nn.Module):
    time_dim = 32

    def __init__(self, layout, conditioning, data, hidden_dims):
        super().__init__()
        self.layout = layout
        # the one-hot group of every discrete column
        self.register_buffer("discrete_groups", conditioning.groups.clone())
        n_groups = layout.group_mask.shape[0]
        scalars = data[:, layout.scalar_index]
        # the scalars standardised, so that the noise is on their scale
        mean = scalars.mean(dim=0)
        std = ((scalars - mean) ** 2).mean(dim=0).sqrt().clamp_min(1e-3)
        self.register_buffer("mean", mean.cpu())
        self.register_buffer("std", std.cpu())
        in_dim = layout.width + n_groups + conditioning.width + self.time_dim
        self.body = mlp(
            in_dim, hidden_dims, layout.width, activation=nn.SiLU, norm=False
        )

    def forward(self, scalars, groups, hidden, condition, t):
        """Raw outputs: the velocity of every scalar, logits of every group.

        ``scalars`` are the noisy standardised scalars, ``groups`` the
        model-space one-hots of the visible groups (zeros where hidden),
        ``hidden`` a float flag per group.
        """
        x = groups.clone()
        x[:, self.layout.scalar_index] = scalars
        inputs = [x, hidden, condition, time_embedding(t, self.time_dim)]
        # float32 under autocast too: the losses and the sampler's steps
        return self.body(torch.cat(inputs, dim=1)).float()

    def _visible(self, rows, hidden):
        """Model-space ``rows`` with the columns of hidden groups zeroed."""
        columns = self.layout.group_columns
        out = torch.zeros_like(rows)
        out[:, columns] = rows[:, columns] * ~hidden[:, self.layout.column_group]
        return out

    def _fixed_groups(self, shown):
        """Which one-hot groups are conditioned on: ``(n, n_groups)``."""
        fixed = torch.zeros(
            (len(shown), self.layout.group_mask.shape[0]),
            dtype=torch.bool,
            device=shown.device,
        )
        fixed[:, self.discrete_groups] = shown
        return fixed

    def losses(self, rows, hot, shown, condition, generator):
        """Squared error of the scalars' velocity and cross-entropy of the
        hidden groups, summed over columns and averaged over rows."""
        n, device = len(rows), rows.device
        t = torch.rand(n, generator=generator, device=device)
        alpha, sigma = (s[:, None] for s in cosine_schedule(t))
        x0 = (rows[:, self.layout.scalar_index] - self.mean) / self.std
        noise = torch.randn(x0.shape, generator=generator, device=device)
        xt = alpha * x0 + sigma * noise
        velocity = alpha * noise - sigma * x0
        n_groups = self.layout.group_mask.shape[0]
        hidden = (
            torch.rand((n, n_groups), generator=generator, device=device) < t[:, None]
        )
        hidden &= ~self._fixed_groups(shown)
        raw = self(xt, self._visible(rows, hidden), hidden.float(), condition, t)
        scalars = ((raw[:, self.layout.scalar_index] - velocity) ** 2).sum() / n
        log_probs = self.layout.log_probs(raw)
        picked = log_probs.gather(2, hot.unsqueeze(2)).squeeze(2)
        groups = -(picked * hidden).sum() / n
        return scalars, groups

    def sample(self, rows, shown, condition, steps, guidance, generator):
        """Rows from noise: ``rows`` holds the ``shown`` discrete columns'
        one-hots (zeros elsewhere), which stay as they are."""
        n, device, layout = len(rows), rows.device, self.layout
        rows = rows.clone()
        hidden = ~self._fixed_groups(shown)
        xt = torch.randn(
            (n, len(layout.scalar_index)), generator=generator, device=device
        )
        times = torch.linspace(1.0, 0.0, steps + 1, device=device)
        for t, s in zip(times[:-1], times[1:], strict=True):
            raw = self._guided(xt, rows, hidden, condition, t.expand(n), guidance)
            # scalars: a deterministic DDIM step
            alpha_t, sigma_t = cosine_schedule(t)
            alpha_s, sigma_s = cosine_schedule(s)
            velocity = raw[:, layout.scalar_index]
            x0 = alpha_t * xt - sigma_t * velocity
            eps = sigma_t * xt + alpha_t * velocity
            xt = alpha_s * x0 + sigma_s * eps
            # groups: reveal each hidden one with probability (t - s) / t
            reveal = torch.rand(hidden.shape, generator=generator, device=device)
            reveal = hidden & (reveal < (t - s) / t)
            self._draw_groups(raw, rows, reveal, generator)
            hidden = hidden & ~reveal
        rows[:, layout.scalar_index] = xt * self.std + self.mean
        return rows

    def _draw_groups(self, raw, rows, reveal, generator):
        """Draw the value of every ``reveal``-ed group from the softmax of its
        logits in ``raw``, by inversion, into ``rows`` (in place), where its
        columns are zeros. Only those groups are computed: over the whole
        sampler that is one softmax per group of a row, not one per step."""
        layout = self.layout
        row, group = reveal.nonzero(as_tuple=True)
        columns, valid = layout.group_index[group], layout.group_mask[group]
        logits = raw[row[:, None], columns].masked_fill(~valid, float("-inf"))
        probs = torch.softmax(logits, dim=1)
        uniform = torch.rand(len(row), generator=generator, device=raw.device)
        choice = (probs.cumsum(dim=1) < uniform[:, None]).sum(dim=1)
        choice = torch.minimum(choice, valid.sum(dim=1) - 1)  # rounding of the sum
        rows[row, columns.gather(1, choice[:, None]).squeeze(1)] = 1.0

    def _guided(self, xt, rows, hidden, condition, t, guidance):
        flags = hidden.float()
        if guidance == 1:
            return self(xt, rows, flags, condition, t)
        if guidance == 0:
            return self(xt, rows, flags, torch.zeros_like(condition), t)
        both = self(
            xt.repeat(2, 1),
            rows.repeat(2, 1),
            flags.repeat(2, 1),
            torch.cat([condition, torch.zeros_like(condition)]),
            t.repeat(2),
        )
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

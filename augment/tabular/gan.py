"""TabularGAN: a conditional Wasserstein GAN for mixed-type tables."""

import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..nn import init_parameters, mlp, update
from .conditioning import Conditioning, TrainingSampler
from .generator import TabularGenerator


class TabularGAN(TabularGenerator):
    """Conditional GAN for tables (the CTGAN family), as an over-sampler.

    The table is encoded by :class:`~augment.tabular.TableEncoder` (mode-specific
    normalisation of numbers, one-hot categories, missing values). A generator
    network maps noise and a condition vector to a row: tanh for the scalar
    of every number, Gumbel-softmax for every one-hot group (modes,
    categories, missing values), all columns at once. A critic compares packs
    of ``pac`` rows with their conditions (PacGAN) under the Wasserstein loss
    with gradient penalty (WGAN-GP). The generator's loss adds the
    cross-entropy of its outputs against the conditions, a moment-matching
    term (the first and second moments of real rows of the same conditions),
    which makes training several times shorter, and, with class labels, an
    auxiliary classifier's cross-entropy, which keeps rows recognisable as
    their class.

    The condition vector shows the class of the row and values of discrete
    columns. Training-by-sampling picks a discrete column (or the label)
    uniformly, one of its values with probability proportional to the log of
    its frequency, then real rows with that value, so that rare categories and
    minority classes are learnt. Sampling conditions on what is asked for and
    then writes the asked values into the rows: class counts and conditions
    are exact, never rejection-sampled.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How :meth:`fit_resample` balances the classes, exactly as in
        imbalanced-learn: ``"auto"`` (= ``"not majority"``), ``"minority"``,
        ``"not minority"``, ``"all"``; a float (binary only) for the
        minority/majority ratio after resampling; a dict ``{label: n_rows}``;
        or a callable ``y -> dict``.
    enlarge : float >= 1 or None, default=None
        After balancing, :meth:`fit_resample` adds rows (in the balanced class
        proportions) until the data set is ``enlarge`` times its original
        size. The only option for a continuous target or no target.
    noise_dim : int, default=32
        Size of the generator's noise input.
    generator_dims : tuple of int, default=(128, 128)
        Widths of the generator's residual layers.
    critic_dims : tuple of int, default=(128, 128)
        Widths of the critic's hidden layers.
    pac : int, default=10
        Rows the critic judges together; ``batch_size`` is rounded up to a
        multiple of it.
    moment_weight : float, default=1.0
        Weight of the moment-matching term of the generator's loss: the
        distance between the first and second moments of generated rows and
        of real rows of the same conditions. It speeds training up several
        times; 0 leaves the adversarial loss alone.
    classifier_weight : float, default=0.3
        With class labels, weight of the auxiliary-classifier term: a
        classifier learns the classes from real rows, and the generator is
        penalised for rows it does not recognise as their class. It makes
        the rows more useful for training classifiers; 0 turns it off.
    epochs : int or None, default=None
        Passes over the data (``n_rows / batch_size`` steps each). None trains
        for about 300 optimiser steps (between 30 and 300 epochs).
    batch_size : int, default=1000
        Rows per optimiser step.
    learning_rate : float, default=1e-3
        Adam's step size, for every network.
    device : str or torch.device, default="cpu"
        ``"cpu"``, ``"auto"`` (CUDA when available) or a torch device.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw (through local generators, never the global
        ones). The same value, data and machine give identical samples.
    verbose : int, default=0
        Show a progress bar with the losses during training.

    Attributes
    ----------
    encoder_ : TableEncoder
        The fitted table encoder.
    module_ : torch.nn.Module
        The trained generator network (the critic is only needed in training).
    history_ : list of dict
        Per-epoch mean losses: ``critic`` (Wasserstein estimate plus gradient
        penalty), ``generator`` (adversarial plus condition loss) and
        ``condition`` (cross-entropy of the generated values against the
        conditions).
    classes_ : ndarray
        Class labels, when fitted with class labels.
    class_prior_ : ndarray
        Training frequency of each class.
    target_type_ : {"classes", "continuous", "none"}
        What ``y`` was in fit.
    sampling_strategy_ : dict
        Rows added per class by the last :meth:`fit_resample`.
    n_features_in_ : int
        Number of columns of ``X``.
    feature_names_in_ : ndarray of str
        Column names of ``X``, when a DataFrame with string column names.

    See Also
    --------
    TabularVAE : A conditional variational auto-encoder on the same encoding.
    TableEncoder : The encoding of tables the model works on.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.datasets import load_iris
    >>> from augment import TabularGAN
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> X["size"] = pd.cut(X["petal length (cm)"], 3, labels=["S", "M", "L"])
    >>> gen = TabularGAN(epochs=5, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(10, y=2, conditions={"size": "L"})
    >>> X_new["size"].value_counts().to_dict(), y_new.value_counts().to_dict()
    ({'L': 10, 'S': 0, 'M': 0}, {2: 10})
    """

    _parameter_constraints = {
        **TabularGenerator._parameter_constraints,
        "noise_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "generator_dims": [tuple, list],
        "critic_dims": [tuple, list],
        "pac": [Interval(numbers.Integral, 1, None, closed="left")],
        "moment_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "classifier_weight": [Interval(numbers.Real, 0, None, closed="left")],
    }

    _default_steps = 300  # with moment matching, enough for small and large tables

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        noise_dim=32,
        generator_dims=(128, 128),
        critic_dims=(128, 128),
        pac=10,
        moment_weight=1.0,
        classifier_weight=0.3,
        epochs=None,
        batch_size=1000,
        learning_rate=1e-3,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.sampling_strategy = sampling_strategy
        self.enlarge = enlarge
        self.noise_dim = noise_dim
        self.generator_dims = generator_dims
        self.critic_dims = critic_dims
        self.pac = pac
        self.moment_weight = moment_weight
        self.classifier_weight = classifier_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _train(self, data, labels, generator):
        spans, n_classes, device = self.encoder_.spans_, self._n_classes, data.device
        conditioning = Conditioning(spans, data, labels, n_classes)
        widths = [s.width for s in spans if s.role == "category"]
        codes = conditioning.codes_of(data)
        sampler = TrainingSampler(codes, widths, labels, n_classes)
        init = self._init_generator()
        module = _Generator(
            self._layout(), conditioning, self.noise_dim, self.generator_dims
        )
        self.module_ = module = init_parameters(module, init).to(device)
        critic = _Critic(data.shape[1] + conditioning.width, self.critic_dims, self.pac)
        networks = {"generator": module, "critic": init_parameters(critic, init)}
        if labels is not None and self.classifier_weight:
            # learns the classes from real rows; the generator is told how
            # well its rows are recognised as their class (auxiliary classifier)
            classifier = mlp(data.shape[1], self.critic_dims[:1], n_classes, norm=False)
            networks["classifier"] = init_parameters(classifier, init)
        optimisers = {
            name: torch.optim.Adam(
                network.to(device).train().parameters(),
                lr=self.learning_rate,
                betas=(0.5, 0.9),
                fused=device.type in ("cpu", "cuda"),  # one kernel for all parameters
            )
            for name, network in networks.items()
        }
        classifier = networks.get("classifier")

        def draw(n):
            rows, codes, shown = sampler.sample(n, generator)
            label = None if labels is None else labels[rows]
            return rows, codes, shown, conditioning.vector(codes, shown, label)

        def step(index):
            n = -(-len(index) // self.pac) * self.pac  # whole packs
            rows, codes, shown, condition = draw(n)
            real = data[rows]
            raw = module(condition, generator)
            fake = module.activate(raw, generator)
            # critic: generated rows against real rows of the same conditions
            scores = critic(
                torch.cat([fake.detach(), real]), condition.repeat(2, 1), generator
            )
            critic_loss = (
                scores[: len(scores) // 2].mean()
                - scores[len(scores) // 2 :].mean()
                + critic.gradient_penalty(real, fake.detach(), condition, generator)
            )
            update(optimisers["critic"], critic_loss)
            if classifier is not None:
                loss = F.cross_entropy(classifier(real), labels[rows])
                update(optimisers["classifier"], loss)
            # generator, on the same rows: fool the updated critic, honour the
            # shown conditions, match the moments of the real rows
            log_probs = module.layout.log_probs(raw)
            losses = {
                "adversarial": -critic(fake, condition, generator).mean(),
                "condition": conditioning.loss(log_probs, codes, shown),
                "moments": self.moment_weight * _moment_gap(fake, real, condition),
            }
            if classifier is not None:
                recognised = F.cross_entropy(classifier(fake), labels[rows])
                losses["classifier"] = self.classifier_weight * recognised
            generator_loss = sum(losses.values())
            update(optimisers["generator"], generator_loss)
            return {"critic": critic_loss, "generator": generator_loss, **losses}

        history = self._run_epochs(step, len(data), generator)
        module.eval()
        return history

    # ------------------------------------------------------------ sampling
    def sample(self, n_samples, y=None, conditions=None):
        """Draw synthetic rows from the fitted model, optionally conditioned.

        Parameters
        ----------
        n_samples : int
            Number of rows, >= 0.
        y : label, array-like of shape (n_samples,) or None, default=None
            Only for a generator fitted with class labels. None draws labels
            from the training label distribution (given the ``conditions``,
            if any); a single label gives every row that label; an array gives
            row ``i`` the label ``y[i]``.
        conditions : dict or None, default=None
            ``{column: value}`` for discrete (categorical, string, boolean)
            columns of the table; integer positions for a generator fitted on
            an array. Every returned row has these values. Values of several
            columns are conditioned on together (the model is trained to
            honour several at once); a combination never seen in training is
            a best effort: the rows still have exactly the asked values, the
            other columns are what the model extrapolates.

        Returns
        -------
        X : DataFrame or ndarray of shape (n_samples, n_features)
            In the format ``fit`` was given: the same column names, order and
            dtypes.
        y : Series, ndarray or list of shape (n_samples,)
            Only when fitted with a target: the labels of the rows (or the
            generated continuous target), in the format ``fit`` was given.
        """
        check_is_fitted(self)
        checked = self._check_conditions(conditions)
        if checked and y is None and self.target_type_ == "classes":
            # the classes of rows with these values, not the overall prior
            probs = self.module_.conditioning.class_probs(
                [(c.position, c.slot) for c in checked]
            )
            rng = np.random.default_rng(self._next_seed())
            y = self.classes_[rng.choice(len(self.classes_), size=n_samples, p=probs)]
        return self._sample_output(n_samples, y, conditions=checked)

    def _generate(self, labels, n_samples, generator, conditions=()):
        module = self.module_.eval()  # batch norm: running statistics
        fixed = [(c.position, c.slot) for c in conditions]
        codes, shown = module.conditioning.draw(labels, n_samples, generator, fixed)
        condition = module.conditioning.vector(codes, shown, labels)
        # in blocks: cache-sized tensors are faster, and memory stays bounded
        blocks = zip(*(t.split(4096) for t in (condition, codes, shown)), strict=True)
        return torch.cat([module.sample(*block, generator) for block in blocks])


class _Residual(nn.Module):
    """``[Linear, BatchNorm, ReLU](x)`` concatenated to ``x`` (CTGAN's block)."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.linear, self.norm = nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim)

    def forward(self, x):
        return torch.cat([F.relu(self.norm(self.linear(x))), x], dim=1)


class _Generator(nn.Module):
    tau = 0.2  # Gumbel-softmax temperature: near one-hot, yet smooth

    def __init__(self, layout, conditioning, noise_dim, hidden_dims):
        super().__init__()
        self.layout, self.conditioning, self.noise_dim = layout, conditioning, noise_dim
        blocks, width = [], noise_dim + conditioning.width
        for h in hidden_dims:
            blocks.append(_Residual(width, h))
            width += h
        self.body = nn.Sequential(*blocks, nn.Linear(width, layout.width))

    def forward(self, condition, generator):
        """Raw outputs (before the activations) for the given conditions."""
        shape, device = (len(condition), self.noise_dim), condition.device
        noise = torch.randn(shape, generator=generator, device=device)
        return self.body(torch.cat([noise, condition], dim=1))

    def activate(self, raw, generator):
        """Training activations: tanh scalars, Gumbel-softmax groups."""
        out = torch.empty_like(raw)
        scalars = self.layout.scalar_index
        out[:, scalars] = torch.tanh(raw[:, scalars])
        soft = self.layout.gumbel_softmax(raw, generator, self.tau)
        return self.layout.scatter_groups(soft, out)

    def sample(self, condition, codes, shown, generator):
        """Model-space rows: one-hot groups, the shown conditions written in."""
        raw = self(condition, generator)
        out = torch.empty_like(raw)
        scalars = self.layout.scalar_index
        out[:, scalars] = torch.tanh(raw[:, scalars])
        out = self.layout.sample_groups(raw, generator, out)
        return self.conditioning.overwrite(out, codes, shown)


class _Critic(nn.Module):
    """Scores packs of ``pac`` rows with their conditions (PacGAN)."""

    dropout = 0.5

    def __init__(self, in_dim, hidden_dims, pac):
        super().__init__()
        self.pac, widths = pac, [pac * in_dim, *hidden_dims]
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out = nn.Linear(widths[-1], 1)

    def forward(self, rows, condition, generator):
        h = torch.cat([rows, condition], dim=1).reshape(len(rows) // self.pac, -1)
        for linear in self.hidden:
            h = F.leaky_relu(linear(h), 0.2)
            if self.training:  # dropout from the local generator
                keep = torch.rand(h.shape, generator=generator, device=h.device)
                h = h * (keep >= self.dropout) / (1 - self.dropout)
        return self.out(h)

    def gradient_penalty(self, real, fake, condition, generator, weight=10.0):
        """WGAN-GP: the critic's gradient norm, per pack, pulled towards 1 on
        random interpolates of real and generated packs."""
        packs = len(real) // self.pac
        alpha = torch.rand((packs, 1, 1), generator=generator, device=real.device)
        alpha = alpha.expand(packs, self.pac, 1).reshape(-1, 1)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        score = self(mixed, condition, generator)
        (gradient,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
        norm = gradient.reshape(packs, -1).norm(dim=1)
        return weight * ((norm - 1) ** 2).mean()


def _moment_gap(fake, real, condition):
    """Squared distance between the first and second moments of generated and
    real rows, jointly with their (shared) conditions.

    The Gram matrix of ``[rows, condition, 1]`` holds the column means, their
    covariances and their means per condition value; matching them is cheap
    and pulls the marginals and pairwise trends into place long before the
    critic alone would (table-GAN's information loss, in model space).
    """
    one = torch.ones((len(fake), 1), device=fake.device)
    fake, real = (torch.cat([rows, condition, one], dim=1) for rows in (fake, real))
    return (((fake.T @ fake - real.T @ real) / len(fake)) ** 2).sum()

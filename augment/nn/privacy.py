"""Differential privacy shared by every model: DP-SGD and the accounting of a budget.

A :class:`PrivacyBudget` is an ``(epsilon, delta)`` budget and the list of
Gaussian mechanisms that spend it, each ``(noise multiplier, sample rate,
steps)``: the noisy statistics the data layer releases (a Gaussian mechanism
is a step of sample rate 1) and the DP-SGD steps of training. Opacus' RDP
accountant composes all of them into one epsilon, so the figure reported is
the whole truth, not the training's share.

:class:`PrivateGradient` is DP-SGD for one network: per-sample gradients
(``torch.func``: ``vmap`` of ``grad``, which also differentiates losses that
hold an inner gradient, such as a critic's gradient penalty), each clipped to
``max_grad_norm`` in L2 norm, summed, plus Gaussian noise of standard deviation
``noise_multiplier * max_grad_norm``, divided by the expected batch size (the
estimator Opacus' optimiser computes). Batches are Poisson samples
(:func:`augment.nn.run_epochs` with ``sample_rate``), the sampling the
accountant's amplification assumes.

Opacus is imported here only, when differential privacy is asked for.
"""

import warnings

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

#: Renyi orders of the accountant. Opacus' defaults end at 63, under which no
#: epsilon below about 0.2 can be certified at delta = 1e-5: larger orders
#: are added. Its 90 fractional orders between 1 and 11 are thinned to 8 (a
#: fractional order costs a hundred times an integer one; the bound stays
#: valid, within 2% of the finer grid).
ALPHAS = [1.1, 1.25, 1.5, 1.75, 2.5, 3.5, 4.5, 5.5, *range(2, 64)]
ALPHAS += [80, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 2048]

#: share of epsilon the data layer's statistics spend, on their own; training
#: gets what is left once both are composed
PREPROCESSING_SHARE = 0.2


class EveryRow:
    """A batch size of every row: each DP-SGD step sees the whole table (a
    Poisson sample of rate 1). Called with the number of rows."""

    def __call__(self, n_rows):
        return n_rows

    def __repr__(self):
        return "every row"


#: what the training parameters left at None mean under differential privacy,
#: for every model (a model adds the size of its private network). DP-SGD's
#: signal-to-noise trade-off: for a given budget, the noise of a step falls
#: with the batch size and grows with the square root of the number of steps,
#: so that few large-batch steps with a larger step size learn most, and every
#: parameter of the private network adds noise. Chosen with TabularVAE on
#: breast cancer, wine, wage1, CPS1988 and credit_data at epsilon 1 and 3,
#: checked at 10 (benchmarks/dp.py's splits; see the user guide's privacy page).
DP_SGD_SETTINGS = {"batch_size": EveryRow(), "epochs": 30, "learning_rate": 2e-2}


def import_opacus():
    """Opacus' RDP accountant class, or an ImportError naming the extra."""
    try:
        from opacus.accountants import RDPAccountant
    except ImportError as error:
        raise ImportError(
            "Differential privacy (dp_epsilon) needs Opacus, which is not "
            "installed: pip install 'augment-learn[dp]'."
        ) from error
    return RDPAccountant


def default_delta(n_rows):
    """``min(1e-5, 1 / (10 n))``: well below ``1 / n``, the level at which
    publishing one row in the clear would meet the guarantee."""
    return min(1e-5, 1.0 / (10 * n_rows))


class PrivacyBudget:
    """An ``(epsilon, delta)`` budget and the mechanisms that spend it.

    Parameters
    ----------
    epsilon : float
    delta : float

    Attributes
    ----------
    mechanisms : list of dict
        ``part`` (what was released), ``noise_multiplier``, ``sample_rate``,
        ``steps`` and ``delta`` (a share of delta spent outside the
        accountant, by thresholds on noisy counts), in order.
    """

    def __init__(self, epsilon, delta):
        self._accountant = import_opacus()
        self.epsilon, self.delta = float(epsilon), float(delta)
        self.mechanisms = []

    def add(self, part, noise_multiplier, sample_rate=1.0, steps=1, delta=0.0):
        """Record a Gaussian mechanism (``steps`` of them at ``sample_rate``)."""
        self.mechanisms.append(
            dict(
                part=part,
                noise_multiplier=float(noise_multiplier),
                sample_rate=float(sample_rate),
                steps=int(steps),
                delta=float(delta),
            )
        )

    @property
    def accountant_delta(self):
        """The delta left to the accountant once thresholds took their share."""
        return self.delta - sum(m["delta"] for m in self.mechanisms)

    def epsilon_of(self, extra=(), reserved_delta=0.0):
        """Epsilon of the recorded mechanisms and ``extra`` ones
        (``(noise_multiplier, sample_rate, steps)`` triples), composed by
        Opacus' RDP accountant at :attr:`accountant_delta` (less
        ``reserved_delta``)."""
        history = [
            (m["noise_multiplier"], m["sample_rate"], m["steps"])
            for m in self.mechanisms
        ]
        history += [tuple(e) for e in extra if e[2] > 0]
        if not history:
            return 0.0
        accountant = self._accountant()
        accountant.history = history
        delta = self.accountant_delta - reserved_delta
        with warnings.catch_warnings():  # "optimal order is the largest": valid
            warnings.simplefilter("ignore", UserWarning)
            return float(accountant.get_epsilon(delta=delta, alphas=ALPHAS))

    def gaussian_noise(self, share, reserved_delta=0.0):
        """The noise multiplier of one Gaussian mechanism (sample rate 1) that
        spends ``share * epsilon`` on its own, once ``reserved_delta`` is set
        aside for thresholds."""
        target = share * self.epsilon

        def fits(z):
            return self.epsilon_of([(z, 1.0, 1)], reserved_delta) <= target

        return _smallest(fits)

    def calibrate(self, *, sample_rate, steps_per_epoch, epochs, max_noise, what):
        """The smallest noise multiplier with which ``epochs`` of DP-SGD, after
        the recorded mechanisms, stay within the budget.

        Raises a ValueError saying how many epochs fit, or the smallest
        epsilon, when more than ``max_noise`` would be needed (noise that
        drowns the gradients).
        """
        steps = epochs * steps_per_epoch

        def fits(z, n_steps=steps):
            return self.epsilon_of([(z, sample_rate, n_steps)]) <= self.epsilon

        if fits(max_noise):
            return _smallest(fits, high=max_noise, rtol=1e-2)
        low, high = 0, epochs  # largest whole number of epochs that fits
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (
                (middle, high)
                if fits(max_noise, middle * steps_per_epoch)
                else (low, middle)
            )
        needed = self.epsilon_of([(max_noise, sample_rate, steps)])
        fit = (
            f"at most {low} epochs fit this budget (set epochs={low})"
            if low
            else "not even one epoch fits it"
        )
        raise ValueError(
            f"dp_epsilon={self.epsilon:g} is too small for {epochs} epochs of "
            f"{what}: the noise would exceed the clipped gradients "
            f"(noise multiplier above the expected batch size, {max_noise:g}). "
            f"{fit[0].upper()}{fit[1:]}, or set dp_epsilon >= {needed:.3g} for "
            f"{epochs} epochs."
        )

    def spent(self):
        """``(epsilon, delta)`` spent by every recorded mechanism, together."""
        return self.epsilon_of(), self.delta if self.mechanisms else 0.0

    def report(self):
        """What spent which part of the budget, as a dict."""
        parts = []
        for m in self.mechanisms:
            alone = self._alone(m)
            parts.append({**m, "epsilon_alone": alone})
        epsilon, delta = self.spent()
        return {
            "epsilon": epsilon,
            "delta": delta,
            "budget": (self.epsilon, self.delta),
            "accountant": "Opacus RDPAccountant (Renyi DP composition)",
            "accountant_delta": self.accountant_delta,
            "mechanisms": parts,
        }

    def _alone(self, m):
        accountant = self._accountant()
        accountant.history = [(m["noise_multiplier"], m["sample_rate"], m["steps"])]
        return float(accountant.get_epsilon(delta=self.accountant_delta, alphas=ALPHAS))


def _smallest(fits, high=None, rtol=1e-3):
    """The smallest positive ``z`` with ``fits(z)`` (monotone), within ``rtol``
    (bisection on the log scale; the result always fits)."""
    if high is None:
        high = 1.0
        while not fits(high):
            high *= 4
            if high > 1e7:
                raise ValueError("The privacy budget is too small for any noise.")
    low = high / 4
    while fits(low):
        high, low = low, low / 4
        if low < 1e-3:
            return high
    while high / low > 1 + rtol:
        middle = (low * high) ** 0.5
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


class PrivateGradient:
    """DP-SGD gradients for the parameters of one network.

    Parameters
    ----------
    module : torch.nn.Module
        The private network; only its parameters get noisy gradients.
    loss : callable
        ``loss(module, *rows) -> 0-d Tensor``: the loss of ONE training row,
        given ``rows`` as batches of size 1 (each row's tensors with a leading
        axis of length 1). It may draw from a torch generator (each row gets
        its own draws).
    noise_multiplier : float
        Noise standard deviation in units of ``max_grad_norm``.
    max_grad_norm : float
        Per-row gradients are clipped to this L2 norm (over all parameters).
    expected_batch_size : float
        The sum of clipped gradients plus noise is divided by it (Poisson
        batches vary in size; dividing by the realised size would leak it).
    generator : torch.Generator
        Drives the noise.

    Attributes
    ----------
    last_norms : Tensor
        The per-row gradient norms of the last call, before clipping.
    """

    def __init__(
        self,
        module,
        loss,
        *,
        noise_multiplier,
        max_grad_norm,
        expected_batch_size,
        generator,
    ):
        self.module, self.generator = module, generator
        self.noise_multiplier, self.max_grad_norm = noise_multiplier, max_grad_norm
        self.expected_batch_size = expected_batch_size
        self.steps = 0
        self._wrapper = _Loss(module, loss)
        self._names = [
            name for name, p in self._wrapper.named_parameters() if p.requires_grad
        ]

        def one(params, *rows):
            return functional_call(
                self._wrapper, params, tuple(r.unsqueeze(0) for r in rows)
            )

        self._per_row = one

    def __call__(self, *rows):
        """Set ``.grad`` of the module's parameters to the noisy mean of the
        clipped per-row gradients of ``rows`` (tensors with one entry per
        row along their first axis); gradients already there are added to.
        Per-row gradients are computed a chunk of rows at a time, so that
        memory stays bounded whatever the batch size."""
        params = dict(self._wrapper.named_parameters())
        params = {name: params[name].detach() for name in self._names}
        totals = {name: torch.zeros_like(p) for name, p in params.items()}
        size = sum(p.numel() for p in params.values())
        chunk = max(1, _CHUNK_VALUES // size)
        per_row_grad = vmap(
            grad(self._per_row),
            in_dims=(None, *[0] * len(rows)),
            randomness="different",
        )
        norms = []
        for start in range(0, len(rows[0]), chunk):
            part = [r[start : start + chunk] for r in rows]
            per_row = per_row_grad(params, *part)
            m = len(part[0])
            norm = torch.stack(
                [per_row[k].reshape(m, -1).norm(dim=1) for k in self._names]
            ).norm(dim=0)
            factor = (self.max_grad_norm / (norm + 1e-6)).clamp(max=1.0)
            for name in self._names:
                totals[name] += torch.einsum("i,i...->...", factor, per_row[name])
            norms.append(norm.detach())
        self.last_norms = torch.cat(norms) if norms else torch.zeros(0)
        std = self.noise_multiplier * self.max_grad_norm
        module_params = dict(self._wrapper.named_parameters())
        for name in self._names:
            p = module_params[name]
            noise = torch.randn(p.shape, generator=self.generator, device=p.device)
            total = (totals[name] + std * noise) / self.expected_batch_size
            p.grad = total if p.grad is None else p.grad + total
        self.steps += 1


#: per-row gradient values held at once (rows per chunk times parameters)
_CHUNK_VALUES = 2**24


class _Loss(nn.Module):
    """A network and a per-row loss as one module, for ``functional_call``."""

    def __init__(self, module, loss):
        super().__init__()
        self.module, self.loss = module, loss

    def forward(self, *rows):
        return self.loss(self.module, *rows)

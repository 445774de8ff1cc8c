"""The training loop every model shares: shuffled mini-batches, progress, history.

Under a ``torch.distributed`` process group (see :mod:`augment.nn.parallel`)
each rank runs the loop over its own rows, every rank takes the same number
of steps, :func:`update` averages the gradients over the ranks and the
history holds the losses averaged over the ranks.

Under a reduced ``precision`` (:mod:`augment.nn.precision`) every step runs
under autocast and :func:`update` scales the loss where float16 needs it.
"""

import contextlib
import contextvars

import numpy as np
import torch
from tqdm.auto import tqdm

from . import parallel
from .precision import FLOAT32

#: the precision of the loop running now, for :func:`update`
_PRECISION = contextvars.ContextVar("precision", default=FLOAT32)


def run_epochs(
    step,
    n_rows,
    *,
    epochs,
    batch_size,
    generator,
    verbose,
    desc,
    sample_rate=None,
    validate=None,
    patience=10,
    warmup=0,
    module=None,
    precision=FLOAT32,
):
    """Run ``step`` over shuffled mini-batches for a number of epochs.

    Parameters
    ----------
    step : callable
        ``step(batch_index) -> dict`` performs one optimisation step on the rows
        given by the ``LongTensor`` ``batch_index`` and returns its losses as
        floats (or 0-d tensors).
    n_rows : int
        Number of training rows.
    epochs : int
        Number of passes over the data.
    batch_size : int
        Rows per step; the last, smaller batch of an epoch is dropped when a
        full batch fits, so that batch statistics stay comparable.
    generator : torch.Generator
        Drives the shuffling, for reproducibility without global seeding.
    verbose : int
        0 is silent; otherwise a progress bar over epochs shows the losses.
    desc : str
        Label of the progress bar.
    sample_rate : float or None, default=None
        None shuffles. A rate makes every batch a Poisson sample instead
        (each row in it independently with this probability, so batch sizes
        vary and may be 0), the sampling differential privacy's accounting
        assumes; an epoch is still ``n_rows // batch_size`` steps.
    validate : callable or None, default=None
        ``validate() -> float``, a loss on held-out rows, called after every
        epoch: training stops once it has not improved for ``patience``
        epochs, and ``module`` gets back the weights of its best epoch.
    patience : int, default=10
        Epochs without a better held-out loss before training stops.
    warmup : int, default=0
        Epochs before the held-out loss counts: neither kept nor stopped on.
    module : torch.nn.Module or None, default=None
        The module whose best weights ``validate`` keeps.
    precision : Precision, default=FLOAT32
        Every ``step`` (and ``validate``) runs under its autocast, and
        :func:`update` scales the losses where it needs (float16).

    Returns
    -------
    history : list of dict
        One dict per epoch: ``{"epoch": i, <loss name>: mean over the epoch}``,
        with ``"held_out"`` when ``validate`` is given.
    """
    batch_size = min(batch_size, n_rows)
    # under a process group, as many steps as the smallest rank's rows allow
    n_batches = parallel.minimum(max(n_rows // batch_size, 1))
    history = []
    best, best_epoch, best_state = np.inf, -1, None
    verbose = verbose and parallel.world()[0] == 0
    bar = tqdm(range(epochs), desc=desc, disable=not verbose, leave=False)
    for epoch in bar:
        if sample_rate is None:
            order = torch.randperm(n_rows, generator=generator, device=generator.device)
        totals = {}
        for b in range(n_batches):
            if sample_rate is None:
                index = order[b * batch_size : (b + 1) * batch_size]
            else:
                index = _poisson(n_rows, sample_rate, generator)
            with _in(precision):
                losses = step(index)
            for name, value in losses.items():  # summed in float32
                totals[name] = totals.get(name, 0.0) + value.detach().float()
        record = _mean_over_ranks(totals, n_batches)
        if validate is not None:
            with _in(precision):
                record["held_out"] = float(validate())
        history.append({"epoch": epoch, **record})
        if verbose:
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items()})
        if not all(np.isfinite(v) for v in record.values()):
            raise FloatingPointError(
                f"{desc}: the training loss diverged at epoch {epoch} ({record}); "
                "lower the learning rate or check the data for extreme values."
            )
        if validate is None or epoch < warmup:
            continue
        if record["held_out"] < best:
            best, best_epoch = record["held_out"], epoch
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return history


@contextlib.contextmanager
def _in(precision):
    """Autocast of ``precision``, which the :func:`update` calls within use."""
    token = _PRECISION.set(precision)
    try:
        with precision.autocast():
            yield
    finally:
        _PRECISION.reset(token)


def _mean_over_ranks(totals, n_batches):
    """Each loss's mean over the epoch's steps (and over the ranks)."""
    if not parallel.active():
        return {name: float(total) / n_batches for name, total in totals.items()}
    names = list(totals)  # the same order on every rank
    values = torch.stack([torch.as_tensor(totals[n]).float().cpu() for n in names])
    values = parallel.sum_(values) / (n_batches * parallel.world()[1])
    return dict(zip(names, values.tolist(), strict=True))


def _poisson(n_rows, rate, generator):
    drawn = torch.rand(n_rows, generator=generator, device=generator.device)
    return (drawn < rate).nonzero().squeeze(1)


@contextlib.contextmanager
def frozen(*modules):
    """Record what runs inside without gradients for the parameters of
    ``modules`` (None is skipped); gradients still flow through them to
    their inputs. For a generator's loss through a critic or a classifier:
    the weight gradients of their convolutions, a third of a pass and
    thrown away at their next update, are then never computed. The graph
    is recorded at the forward pass, so a backward pass after the block
    keeps skipping them."""
    parameters = [
        p
        for module in modules
        if module is not None
        for p in module.parameters()
        if p.requires_grad
    ]
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in parameters:
            p.requires_grad_(True)


def update(optimiser, loss):
    """One optimiser step on ``loss`` (its gradients averaged over the ranks
    of a process group first), in the precision of the running loop."""
    precision = _PRECISION.get()
    optimiser.zero_grad(set_to_none=True)
    precision.backward(optimiser, loss)
    if parallel.active():
        parallel.average_gradients(
            p for group in optimiser.param_groups for p in group["params"]
        )
    precision.step(optimiser)

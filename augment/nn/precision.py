"""The one place that turns a ``precision`` parameter into autocast and loss scaling.

Mixed precision runs the forward passes of training and sampling under
:func:`torch.autocast`: matrix products and convolutions compute in
bfloat16 or float16, reductions, losses and normalisations stay in float32,
and the parameters (the master weights the optimiser updates) are always
float32. float16 has a narrow exponent range, so that small gradients would
underflow to zero: its losses are multiplied by a dynamic scale before
``backward`` (:class:`torch.amp.GradScaler`, one per optimiser), the gradients
divided by it before the step, and a step whose gradients overflowed is
skipped. bfloat16 has float32's range and needs no scale.

float16 is for CUDA only: on the CPU it is slow (most CPUs have no float16
arithmetic) and PyTorch's CPU autocast lists are made for bfloat16.
"""

import contextlib
import warnings

import torch

#: the values of the ``precision`` parameter
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_precision(precision, device):
    """The name of the precision a fit (or a sampling call) on ``device``
    computes in: ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    ``"auto"`` is float32 on every device (see the ``precision`` parameter's
    documentation for why).

    Raises
    ------
    ValueError
        float16 on the CPU, or a reduced precision on a device without
        autocast.
    """
    if precision in ("auto", "float32"):
        return "float32"
    if precision == "float16" and device.type == "cpu":
        raise ValueError(
            "precision='float16' is for CUDA devices only (device='cpu' here): "
            "on the CPU use precision='bfloat16' or 'float32'."
        )
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(
            f"precision={precision!r}: PyTorch has no autocast on "
            f"device={str(device)!r}; use precision='float32'."
        )
    return precision


def loadable_precision(precision, device):
    """The precision a loaded model file keeps on ``device``: its own, or
    float32 (with a warning) for float16 loaded on the CPU. ``device`` is
    the loaded ``device`` parameter; it is not checked here (sampling does)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if precision == "float16" and torch.device(device).type == "cpu":
        warnings.warn(
            "The model was saved with precision='float16', which is for CUDA "
            "only: it is loaded on the CPU with precision='float32'.",
            RuntimeWarning,
            stacklevel=3,
        )
        return "float32"
    return precision


class Precision:
    """Autocast and loss scaling for one fit or sampling call.

    Parameters
    ----------
    name : {"float32", "bfloat16", "float16"}
        A resolved precision (:func:`resolve_precision`).
    device : torch.device
        Where the model computes.
    """

    def __init__(self, name, device):
        self.name, self.device_type = name, torch.device(device).type
        self.dtype = getattr(torch, name)
        self._scalers = {}  # one loss scale per optimiser (float16 only)

    def autocast(self):
        """The context of the forward passes: autocast, or nothing in float32."""
        if self.name == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, optimiser, loss):
        """``loss.backward()`` (outside autocast, as PyTorch recommends),
        the loss scaled first in float16."""
        if self.name == "float32":
            loss.backward()
            return
        if self.name == "float16":
            loss = self._scaler(optimiser).scale(loss)
        with torch.autocast(self.device_type, enabled=False):
            loss.backward()

    def step(self, optimiser):
        """``optimiser.step()``; in float16 on the unscaled gradients, skipped
        where they overflowed, and the scale updated."""
        if self.name != "float16":
            optimiser.step()
            return
        scaler = self._scaler(optimiser)
        scaler.step(optimiser)
        scaler.update()

    def _scaler(self, optimiser):
        if optimiser not in self._scalers:
            self._scalers[optimiser] = torch.amp.GradScaler(self.device_type)
        return self._scalers[optimiser]


#: full precision, without autocast: what every loop runs in unless told
FLOAT32 = Precision("float32", "cpu")

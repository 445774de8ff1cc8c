"""Torch pieces shared by every model: device handling, blocks, the training loop."""

from .blocks import gaussian_latent, in_blocks, init_parameters, mlp
from .conv import ConvDecoder, ConvEncoder, spectral_norm
from .device import resolve_device
from .training import frozen, run_epochs, update

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "frozen",
    "gaussian_latent",
    "in_blocks",
    "init_parameters",
    "mlp",
    "resolve_device",
    "run_epochs",
    "spectral_norm",
    "update",
]

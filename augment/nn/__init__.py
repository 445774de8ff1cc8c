"""Torch pieces shared by every model: device handling, blocks, the training loop."""

from .blocks import (
    cosine_schedule,
    gaussian_latent,
    in_blocks,
    init_parameters,
    mlp,
    time_embedding,
)
from .conv import ConvDecoder, ConvEncoder, spectral_norm
from .device import resolve_device
from .training import frozen, run_epochs, update

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "cosine_schedule",
    "frozen",
    "gaussian_latent",
    "in_blocks",
    "init_parameters",
    "mlp",
    "resolve_device",
    "run_epochs",
    "spectral_norm",
    "time_embedding",
    "update",
]

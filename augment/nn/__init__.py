"""Torch pieces shared by every model: device handling, blocks, the training loop."""

from .blocks import init_parameters, mlp
from .device import resolve_device
from .training import run_epochs

__all__ = ["init_parameters", "mlp", "resolve_device", "run_epochs"]

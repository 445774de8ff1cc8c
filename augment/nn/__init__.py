"""Torch pieces shared by every model: device handling, blocks, the training loop."""

from .blocks import mlp
from .device import resolve_device
from .training import run_epochs

__all__ = ["mlp", "resolve_device", "run_epochs"]

"""Tabular data: the table encoder and the tabular generators."""

from .encoder import TableEncoder
from .gan import TabularGAN
from .vae import TabularVAE

__all__ = ["TableEncoder", "TabularGAN", "TabularVAE"]

"""Tabular data: the table encoder and the tabular generators."""

from .encoder import TableEncoder
from .vae import TabularVAE

__all__ = ["TableEncoder", "TabularVAE"]

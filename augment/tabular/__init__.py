"""Tabular data: the table encoder and the tabular generators."""

from .diffusion import TabularDiffusion
from .encoder import TableEncoder
from .files import ParquetTable
from .gan import TabularGAN
from .transformer import TabularTransformer
from .vae import TabularVAE

__all__ = [
    "ParquetTable",
    "TableEncoder",
    "TabularDiffusion",
    "TabularGAN",
    "TabularTransformer",
    "TabularVAE",
]

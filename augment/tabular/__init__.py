"""Tabular data: the table encoder and the tabular generators."""

from .diffusion import TabularDiffusion
from .encoder import TableEncoder
from .files import BatchTable, ParquetTable
from .gan import TabularGAN
from .transformer import TabularTransformer
from .vae import TabularVAE

__all__ = [
    "BatchTable",
    "ParquetTable",
    "TableEncoder",
    "TabularDiffusion",
    "TabularGAN",
    "TabularTransformer",
    "TabularVAE",
]

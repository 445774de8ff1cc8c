"""Tabular data: the table encoder and the tabular generators."""

from .diffusion import TabularDiffusion
from .encoder import TableEncoder
from .gan import TabularGAN
from .transformer import TabularTransformer
from .vae import TabularVAE

__all__ = [
    "TableEncoder",
    "TabularDiffusion",
    "TabularGAN",
    "TabularTransformer",
    "TabularVAE",
]

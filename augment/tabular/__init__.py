"""Tabular data: the table encoder and the tabular generators."""

from .encoder import TableEncoder

__all__ = ["TableEncoder"]

"""Small torch building blocks shared by the models."""

from torch import nn


def mlp(in_dim, hidden, out_dim, *, activation=nn.ReLU, norm=True, dropout=0.0):
    """A multi-layer perceptron: ``[Linear, (BatchNorm), activation, (Dropout)]*``
    for every width in ``hidden``, then a final ``Linear`` to ``out_dim``."""
    layers, width = [], in_dim
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(activation())
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)

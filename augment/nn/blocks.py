"""Small torch building blocks shared by the models."""

import math

import torch
from torch import nn


def mlp(in_dim, hidden, out_dim, *, activation=nn.ReLU, norm=True):
    """A multi-layer perceptron: ``[Linear, (BatchNorm), activation]*`` for
    every width in ``hidden``, then a final ``Linear`` to ``out_dim``.

    (No dropout here: ``nn.Dropout`` draws from torch's global generator; a
    model that wants dropout draws its mask from its own, as TabularGAN's
    critic does.)"""
    layers, width = [], in_dim
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(activation())
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def gaussian_latent(mean, log_var, generator):
    """A reparameterised draw from ``N(mean, exp(log_var))`` and its KL
    divergence from ``N(0, 1)``, summed over dimensions and averaged over rows
    (the latent half of a VAE's loss)."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device)
    z = mean + noise * (0.5 * log_var).exp()
    kl = -0.5 * (1 + log_var - mean**2 - log_var.exp()).sum() / len(mean)
    return z, kl


def init_parameters(module, generator):
    """Re-draw every weight of ``module`` from ``generator`` (in place).

    torch initialises layers from its global random state; re-drawing them
    with PyTorch's default schemes from a local generator makes a model's
    start reproducible without seeding (or disturbing) the global state.
    Normalisation layers keep their deterministic ones and zeros.
    """
    with torch.no_grad():
        for layer in module.modules():
            weight = getattr(layer, "weight", None)
            if isinstance(layer, nn.Embedding):
                weight.normal_(generator=generator)
            elif isinstance(weight, torch.Tensor) and weight.dim() >= 2:
                bound = 1 / math.sqrt(weight[0].numel())  # 1/sqrt(fan_in)
                weight.uniform_(-bound, bound, generator=generator)
                bias = getattr(layer, "bias", None)
                if isinstance(bias, torch.Tensor):
                    bias.uniform_(-bound, bound, generator=generator)
    return module


def in_blocks(function, *tensors, size=4096):
    """``function(*tensors)`` over blocks of ``size`` rows, concatenated.

    Sampling or scoring many rows so keeps memory bounded (and cache-sized
    tensors are faster). Any of ``tensors`` may be None: it is passed as None
    to every block.
    """
    n = next(len(t) for t in tensors if t is not None)
    starts = range(0, max(n, 1), size)
    return torch.cat(
        [
            function(*(None if t is None else t[a : a + size] for t in tensors))
            for a in starts
        ]
    )


def time_embedding(t, dim=32):
    """Sinusoidal features of a diffusion time ``t`` in [0, 1]: ``(n, dim)``."""
    frequencies = torch.exp(
        -math.log(1000.0) * torch.arange(dim // 2, device=t.device) / (dim // 2)
    )
    angles = 1000.0 * t[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def cosine_schedule(t):
    """Signal and noise scales ``(alpha, sigma)`` of the variance-preserving
    cosine schedule (Nichol & Dhariwal, 2021) at time ``t`` in [0, 1]:
    ``x_t = alpha x_0 + sigma noise``, pure noise at ``t = 1``."""
    return torch.cos(0.5 * math.pi * t), torch.sin(0.5 * math.pi * t)

"""Convolutional blocks shared by the image models, sized from the images.

Any image size works, square or not: a decoder grows a small grid by 2x
upsampling stages until it covers the image and crops the centre; an encoder
halves the grid (rounding up) until it is at most 4 pixels on a side.

Channels are set at the coarsest grid and halve at every finer stage (down to
8), so that every stage costs about the same: the cost of a pass grows with
the number of pixels times the number of stages, its logarithm, rather than
with the pixels times the channels of a fixed-width network.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

_GRID = 4  # side of the smallest grid the networks work on
# convolutions run on channels-last activations: oneDNN's CPU kernels are up
# to twice as fast on them as on (N, C, H, W), most with few channels
_LAST = torch.channels_last


def upsampling_plan(height, width):
    """The number of 2x stages and the starting grid that cover an image.

    Returns
    -------
    stages : int
    grid : tuple of int
        ``(h, w)`` with ``h * 2**stages >= height`` and ``w * 2**stages >= width``,
        at most 4 on a side.
    """
    stages = 0
    while max(height, width) > _GRID * 2**stages:
        stages += 1
    return stages, (math.ceil(height / 2**stages), math.ceil(width / 2**stages))


def stage_widths(stages, width, smallest=8):
    """Channels per stage, coarse to fine: ``width`` halved each stage (at
    least ``smallest``, and never more than ``width``)."""
    smallest = min(smallest, width)
    return [max(width >> i, smallest) for i in range(stages + 1)]


class ConvDecoder(nn.Module):
    """A vector to an image: a linear map onto a small grid, then per stage a
    2x nearest upsampling, a 3x3 convolution, batch norm and ReLU, a last 3x3
    convolution to the image's channels, and a centred crop.

    Returns raw values (no output activation): each model picks its own.

    Parameters
    ----------
    in_dim : int
        Length of the input vector (noise or latent code, plus the condition).
    shape : tuple of int
        ``(channels, height, width)`` of the images.
    width : int
        Channels of the coarsest grid, halved at every finer stage (at least 8).
    """

    def __init__(self, in_dim, shape, width):
        super().__init__()
        channels, self.height, self.width = shape
        stages, self.grid = upsampling_plan(self.height, self.width)
        widths = stage_widths(stages, width)
        self.start_shape = (widths[0], *self.grid)
        self.project = nn.Linear(in_dim, widths[0] * self.grid[0] * self.grid[1])
        self.start = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(a, b, 3, padding=1),
                nn.BatchNorm2d(b),
                nn.ReLU(),
            ]
        layers.append(nn.Conv2d(widths[-1], channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, vector):
        grid = self.project(vector).reshape(len(vector), *self.start_shape)
        image = self.body(self.start(grid.contiguous(memory_format=_LAST)))
        top = (image.shape[2] - self.height) // 2
        left = (image.shape[3] - self.width) // 2
        return image[:, :, top : top + self.height, left : left + self.width]


class ConvEncoder(nn.Module):
    """An image to a feature map of at most 4x4: a 3x3 convolution, then 3x3
    convolutions of stride 2 (channels doubling) until the grid is small
    enough, each followed by a leaky ReLU.

    Parameters
    ----------
    shape : tuple of int
        ``(channels, height, width)`` of the input.
    width : int
        Channels of the coarsest grid (the output), halved at every finer
        stage (at least 8): the mirror of :class:`ConvDecoder`.

    Attributes
    ----------
    out_channels : int
    out_grid : tuple of int
        Shape of the output feature map, ``(out_channels, *out_grid)``.
    """

    def __init__(self, shape, width):
        super().__init__()
        channels, height, wide = shape
        stages, self.out_grid = upsampling_plan(height, wide)
        widths = stage_widths(stages, width)[::-1]  # fine to coarse
        layers = [nn.Conv2d(channels, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, images):
        return self.body(images.contiguous(memory_format=_LAST))


class _SpectralNorm(nn.Module):
    """``weight / sigma``, sigma the largest singular value of the weight
    (Miyato et al., 2018), estimated by one power iteration per training
    forward pass. The iteration starts from a fixed vector, so that nothing
    draws from torch's global random state."""

    def __init__(self, weight):
        super().__init__()
        rows = weight.shape[0]
        self.register_buffer("u", torch.full((rows,), rows**-0.5))

    def forward(self, weight):
        # in float32 under autocast too (a normalisation, as autocast keeps them)
        with torch.autocast(weight.device.type, enabled=False):
            matrix = weight.flatten(1)
            with torch.no_grad():
                v = F.normalize(matrix.T @ self.u, dim=0)
                if self.training:
                    self.u.copy_(F.normalize(matrix @ v, dim=0))
                    v = F.normalize(matrix.T @ self.u, dim=0)
                u = self.u.clone()  # the graph keeps this step's vector
            return weight / torch.dot(u, matrix @ v)


def spectral_norm(module):
    """Spectral normalisation of every convolution and linear layer of
    ``module`` (in place). Apply it after :func:`init_parameters`, which draws
    the weights it normalises."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear | nn.Embedding):
            parametrize.register_parametrization(
                layer, "weight", _SpectralNorm(layer.weight)
            )
    return module

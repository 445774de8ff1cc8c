"""Differentiable augmentation of image batches (DiffAugment, Zhao et al., 2020).

A GAN's critic sees real and generated images through the same random
transformations; gradients flow through them to the generator. The critic can
then no longer tell images apart by memorising a few training images, while
the generator is still pushed towards the untransformed images (the
transformations cover both sides alike). Every draw comes from the given
:class:`torch.Generator`; images are ``(N, C, H, W)`` in [-1, 1].
"""

import torch
import torch.nn.functional as F


def _uniform(images, generator, low=0.0, high=1.0):
    shape = (len(images), 1, 1, 1)
    u = torch.rand(shape, generator=generator, device=images.device)
    return low + (high - low) * u


def color(images, generator):
    """Random brightness, saturation and contrast, per image."""
    images = images + _uniform(images, generator, -0.5, 0.5)
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * _uniform(images, generator, 0, 2) + mean
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * _uniform(images, generator, 0.5, 1.5) + mean


def _integers(low, high, n, generator, device):
    """``n`` integers in [low, high], shaped (N, 1, 1) to broadcast over pixels."""
    shape = (n, 1, 1)
    return torch.randint(low, high + 1, shape, generator=generator, device=device)


def translation(images, generator, ratio=0.125):
    """Shift every image by up to ``ratio`` of its side (at least a pixel),
    filling with the background value -1."""
    n, _, height, width = images.shape
    dy = max(round(height * ratio), 1)
    dx = max(round(width * ratio), 1)
    rows = torch.arange(height, device=images.device)[None, :, None]
    cols = torch.arange(width, device=images.device)[None, None, :]
    rows = rows + dy + _integers(-dy, dy, n, generator, images.device)  # (N, H, 1)
    cols = cols + dx + _integers(-dx, dx, n, generator, images.device)  # (N, 1, W)
    padded = F.pad(images, [dx, dx, dy, dy], value=-1.0)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # gathered as NHWC


def cutout(images, generator, ratio=0.5):
    """Blank out a rectangle of ``ratio`` of each side, at a random place."""
    n, _, height, width = images.shape
    cut_h, cut_w = max(round(height * ratio), 1), max(round(width * ratio), 1)
    device = images.device
    top = _integers(0, height - cut_h, n, generator, device)
    left = _integers(0, width - cut_w, n, generator, device)
    rows = torch.arange(height, device=device)[None, :, None]
    cols = torch.arange(width, device=device)[None, None, :]
    inside = (
        (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    )
    return images.masked_fill(inside[:, None], 0.0)


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def augment(images, policy, generator):
    """Apply the augmentations named in ``policy``, in the order given."""
    for name in policy:
        images = AUGMENTATIONS[name](images, generator)
    return images

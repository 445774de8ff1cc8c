"""Images: the class-conditional image generators."""

from .diffusion import ImageDiffusion
from .gan import ImageGAN
from .vae import ImageVAE

__all__ = ["ImageDiffusion", "ImageGAN", "ImageVAE"]

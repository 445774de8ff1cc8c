"""Images: the class-conditional image generators."""

from .gan import ImageGAN
from .vae import ImageVAE

__all__ = ["ImageGAN", "ImageVAE"]

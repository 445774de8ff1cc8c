"""augment-learn: synthetic data augmentation for scikit-learn pipelines."""

from .tabular import TableEncoder, TabularGAN, TabularVAE

__version__ = "0.1.0.dev0"
__all__ = ["TableEncoder", "TabularGAN", "TabularVAE", "__version__"]

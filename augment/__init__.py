"""augment-learn: synthetic data augmentation for scikit-learn pipelines."""

from .augmented import AugmentedClassifier
from .evaluation import EvaluationReport, evaluate
from .image import ImageDiffusion, ImageGAN, ImageVAE
from .io import load
from .tabular import (
    TableEncoder,
    TabularDiffusion,
    TabularGAN,
    TabularTransformer,
    TabularVAE,
)

__version__ = "0.1.0.dev0"
__all__ = [
    "AugmentedClassifier",
    "EvaluationReport",
    "ImageDiffusion",
    "ImageGAN",
    "ImageVAE",
    "TableEncoder",
    "TabularDiffusion",
    "TabularGAN",
    "TabularTransformer",
    "TabularVAE",
    "__version__",
    "evaluate",
    "load",
]

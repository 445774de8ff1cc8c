"""ImageVAE: a class-conditional convolutional variational auto-encoder."""

import numbers

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from .._docstrings import fill_doc
from ..nn import (
    ConvDecoder,
    ConvEncoder,
    gaussian_latent,
    in_blocks,
    init_parameters,
    update,
)
from .generator import ImageGenerator


@fill_doc
class ImageVAE(ImageGenerator):
    """Class-conditional convolutional variational auto-encoder, as an over-sampler.

    A convolutional encoder maps an image (its features joined by its class)
    to a Gaussian latent code; a convolutional decoder maps a code
    and a class back to pixel intensities, learnt with a Bernoulli likelihood
    (binary cross-entropy on the pixels scaled to [0, 1]). Sampling decodes
    codes drawn from the prior for the classes asked for and returns the
    decoded intensities: class counts are exact, never rejection-sampled.

    The networks are sized from the images: grayscale or colour, square or
    not, 8x8 pixels or 64x64.

    Parameters
    ----------
    %(sampling_strategy)s
    %(enlarge)s
    latent_dim : int, default=16
        Size of the latent code.
    width : int, default=64
        Channels of the encoder's and the decoder's coarsest grid (at most
        4x4), halved at every finer stage (down to 8).
    kl_weight : float, default=0.3
        Weight of the KL divergence against the reconstruction term (a
        beta-VAE's beta). Below 1 gives sharper images, which suit training
        classifiers better than the blurred ones of 1; near 0 the prior's
        samples stray from the training images.
    %(filter_confidence)s
    %(epochs)s
    %(batch_size)s
    learning_rate : float, default=1e-3
        Adam's step size.
    %(image_input)s
    %(device)s
    %(precision)s
    %(random_state)s
    %(verbose)s

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    %(history_)s
        The losses: ``loss``, ``reconstruction``, ``kl``.
    %(image_attributes)s
    %(target_attributes)s

    See Also
    --------
    ImageGAN : A class-conditional GAN on the same input.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from augment import ImageVAE
    >>> digits = load_digits()
    >>> X, y = digits.images[:200] / 16, digits.target[:200]
    >>> gen = ImageVAE(epochs=2, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(5, y=3)
    >>> X_new.shape, y_new.tolist()
    ((5, 8, 8), [3, 3, 3, 3, 3])
    """

    _parameter_constraints = {
        **ImageGenerator._parameter_constraints,
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "kl_weight": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    _default_steps = 2000

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        latent_dim=16,
        width=64,
        kl_weight=0.3,
        filter_confidence=None,
        epochs=None,
        batch_size=32,
        learning_rate=1e-3,
        image_shape=None,
        channels_last=None,
        pixel_range=(0.0, 1.0),
        device="cpu",
        precision="auto",
        random_state=None,
        verbose=0,
    ):
        self.sampling_strategy = sampling_strategy
        self.enlarge = enlarge
        self.latent_dim = latent_dim
        self.width = width
        self.kl_weight = kl_weight
        self.filter_confidence = filter_confidence
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.image_shape = image_shape
        self.channels_last = channels_last
        self.pixel_range = pixel_range
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    def _build_modules(self, init):
        module = _ConditionalVAE(
            self.image_shape_, self._n_classes, self.latent_dim, self.width
        )
        self.module_ = init_parameters(module, init)

    def _train(self, images, labels, generator):
        self._build_modules(self._init_generator())
        module = self.module_
        module.to(images.device).train()
        optimiser = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        targets = (images + 1) / 2  # the Bernoulli likelihood's intensities

        def step(index):
            label = None if labels is None else labels[index]
            reconstruction, kl = module.losses(
                images[index], targets[index], label, generator
            )
            loss = reconstruction + self.kl_weight * kl
            update(optimiser, loss)
            return {"loss": loss, "reconstruction": reconstruction, "kl": kl}

        history = self._run_epochs(step, len(images), generator)
        module.eval()
        return history

    def _generate(self, labels, n_samples, generator, conditions=()):
        module = self.module_.eval()  # batch norm: running statistics
        shape, device = (n_samples, self.latent_dim), generator.device
        z = torch.randn(shape, generator=generator, device=device)
        return in_blocks(module.decode, z, labels, size=1024)


class _ConditionalVAE(nn.Module):
    def __init__(self, shape, n_classes, latent_dim, width):
        super().__init__()
        channels, height, wide = shape
        self.n_classes = n_classes
        self.encoder = ConvEncoder(shape, width)
        features = self.encoder.out_channels * self.encoder.out_grid[0]
        features *= self.encoder.out_grid[1]
        self.code = nn.Linear(features + n_classes, 2 * latent_dim)
        self.decoder = ConvDecoder(latent_dim + n_classes, shape, width)

    def _one_hot(self, labels):
        return F.one_hot(labels, self.n_classes).float()

    def _logits(self, z, labels):
        if labels is not None:
            z = torch.cat([z, self._one_hot(labels)], dim=1)
        return self.decoder(z)

    def losses(self, images, targets, labels, generator):
        """Reconstruction negative log-likelihood and KL divergence, per image."""
        features = F.leaky_relu(self.encoder(images).flatten(1), 0.2)
        if labels is not None:  # the class joins the pooled features
            features = torch.cat([features, self._one_hot(labels)], dim=1)
        mean, log_var = self.code(features).chunk(2, dim=1)
        z, kl = gaussian_latent(mean, log_var, generator)
        logits = self._logits(z, labels)
        reconstruction = F.binary_cross_entropy_with_logits(
            logits, targets, reduction="sum"
        ) / len(images)
        return reconstruction, kl

    def decode(self, z, labels):
        """Model-space images in [-1, 1]: the decoded intensities."""
        return 2 * torch.sigmoid(self._logits(z, labels)) - 1

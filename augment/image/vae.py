"""ImageVAE: a class-conditional convolutional variational auto-encoder."""

import numbers

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import nn

from ..nn import ConvDecoder, ConvEncoder, gaussian_latent, init_parameters, update
from .generator import ImageGenerator


class ImageVAE(ImageGenerator):
    """Class-conditional convolutional variational auto-encoder, as an over-sampler.

    A convolutional encoder maps an image and its class (as extra constant
    channels) to a Gaussian latent code; a convolutional decoder maps a code
    and a class back to pixel intensities, learnt with a Bernoulli likelihood
    (binary cross-entropy on the pixels scaled to [0, 1]). Sampling decodes
    codes drawn from the prior for the classes asked for and returns the
    decoded intensities: class counts are exact, never rejection-sampled.

    The networks are sized from the images: grayscale or colour, square or
    not, 8x8 pixels or 64x64.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How :meth:`fit_resample` balances the classes, exactly as in
        imbalanced-learn: ``"auto"`` (= ``"not majority"``), ``"minority"``,
        ``"not minority"``, ``"all"``; a float (binary only) for the
        minority/majority ratio after resampling; a dict ``{label: n_images}``;
        or a callable ``y -> dict``.
    enlarge : float >= 1 or None, default=None
        After balancing, :meth:`fit_resample` adds images (in the balanced
        class proportions) until the data set is ``enlarge`` times its
        original size. The only option for unlabelled images.
    latent_dim : int, default=16
        Size of the latent code.
    width : int, default=32
        Channels of the encoder's first convolution (doubled at every stage)
        and of the decoder's coarsest grid (halved at every stage).
    kl_weight : float, default=0.3
        Weight of the KL divergence against the reconstruction term (a
        beta-VAE's beta). Below 1 gives sharper images, which suit training
        classifiers better than the blurred ones of 1; near 0 the prior's
        samples stray from the training images.
    epochs : int or None, default=None
        Passes over the data (``n_images / batch_size`` steps each). None
        trains for about 2,000 optimiser steps.
    batch_size : int, default=64
        Images per optimiser step.
    learning_rate : float, default=1e-3
        Adam's step size.
    image_shape : tuple of int or None, default=None
        For flat input ``(n_images, n_pixels)`` only: the shape of one image,
        ``(height, width)`` or three entries (read as in ``channels_last``);
        one entry may be -1, as in :func:`numpy.reshape`.
    channels_last : bool or None, default=None
        Whether 4-d images are ``(N, H, W, C)``. None tells from the shape
        (the axis of 1, 3 or 4 entries is the channels) and raises when both
        could be, as for ``(N, 3, 3, 3)``.
    pixel_range : tuple of (low, high) or None, default=(0.0, 1.0)
        The values of pixels that are not uint8 (uint8 pixels are 0 to 255);
        values outside it are an error. None takes the training images' own
        minimum and maximum. Generated pixels stay within the range.
    device : str or torch.device, default="cpu"
        ``"cpu"``, ``"auto"`` (CUDA when available) or a torch device.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw (through local generators, never the global
        ones). The same value, data and machine give identical samples.
    verbose : int, default=0
        Show a progress bar with the losses during training.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    image_shape_ : tuple of int
        ``(channels, height, width)`` of the training images.
    history_ : list of dict
        Per-epoch mean losses: ``loss``, ``reconstruction``, ``kl``.
    classes_ : ndarray
        Class labels, when fitted with class labels.
    class_prior_ : ndarray
        Training frequency of each class.
    target_type_ : {"classes", "none"}
        What ``y`` was in fit.
    sampling_strategy_ : dict
        Images added per class by the last :meth:`fit_resample`.
    n_features_in_ : int
        Values per image (channels x height x width).
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame of flat images with string
        column names.

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
        width=32,
        kl_weight=0.3,
        epochs=None,
        batch_size=64,
        learning_rate=1e-3,
        image_shape=None,
        channels_last=None,
        pixel_range=(0.0, 1.0),
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.sampling_strategy = sampling_strategy
        self.enlarge = enlarge
        self.latent_dim = latent_dim
        self.width = width
        self.kl_weight = kl_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.image_shape = image_shape
        self.channels_last = channels_last
        self.pixel_range = pixel_range
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _train(self, images, labels, generator):
        module = _ConditionalVAE(
            self.image_shape_, self._n_classes, self.latent_dim, self.width
        )
        self.module_ = module = init_parameters(module, self._init_generator())
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

    def _generate(self, labels, n_samples, generator):
        module = self.module_.eval()  # batch norm: running statistics
        device = module.decoder.project.weight.device
        z = torch.randn(
            (n_samples, self.latent_dim), generator=generator, device=device
        )
        return self._in_blocks(module.decode, z, labels)


class _ConditionalVAE(nn.Module):
    def __init__(self, shape, n_classes, latent_dim, width):
        super().__init__()
        channels, height, wide = shape
        self.n_classes = n_classes
        self.encoder = ConvEncoder((channels + n_classes, height, wide), width)
        features = self.encoder.out_channels * self.encoder.out_grid[0]
        features *= self.encoder.out_grid[1]
        self.code = nn.Linear(features, 2 * latent_dim)
        self.decoder = ConvDecoder(latent_dim + n_classes, shape, 2 * width)

    def _one_hot(self, labels):
        return F.one_hot(labels, self.n_classes).float()

    def _logits(self, z, labels):
        if labels is not None:
            z = torch.cat([z, self._one_hot(labels)], dim=1)
        return self.decoder(z)

    def losses(self, images, targets, labels, generator):
        """Reconstruction negative log-likelihood and KL divergence, per image."""
        if labels is not None:
            planes = self._one_hot(labels)[:, :, None, None]
            planes = planes.expand(-1, -1, *images.shape[2:])
            images = torch.cat([images, planes], dim=1)
        features = self.encoder(images).flatten(1)
        mean, log_var = self.code(F.leaky_relu(features, 0.2)).chunk(2, dim=1)
        z, kl = gaussian_latent(mean, log_var, generator)
        logits = self._logits(z, labels)
        reconstruction = F.binary_cross_entropy_with_logits(
            logits, targets, reduction="sum"
        ) / len(images)
        return reconstruction, kl

    def decode(self, z, labels):
        """Model-space images in [-1, 1]: the decoded intensities."""
        return 2 * torch.sigmoid(self._logits(z, labels)) - 1

"""ImageGAN: a class-conditional convolutional GAN that learns from few images."""

import numbers

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .._docstrings import fill_doc
from .._validation import SequenceOf
from ..nn import (
    ConvDecoder,
    ConvEncoder,
    frozen,
    in_blocks,
    init_parameters,
    spectral_norm,
    update,
)
from .augmentation import AUGMENTATIONS, augment
from .generator import ImageGenerator


@fill_doc
class ImageGAN(ImageGenerator):
    """Class-conditional convolutional GAN for images, as an over-sampler.

    A generator maps noise and a class to an image; a critic with spectral
    normalisation scores images against their class by projection (Miyato and
    Koyama, 2018) under the hinge loss. What keeps it from memorising a small
    training set: differentiable augmentation (Zhao et al., 2020) shows the
    critic real and generated images randomly shifted, so that it cannot learn
    the few images by heart, while the generator learns the images, not the
    shifts; a mode-seeking term (Mao et al., 2019) rewards the generator for
    turning different noise into different images of a class, and an
    auxiliary classifier keeps those images recognisable as their class: a
    class head on the critic's convolutions (AC-GAN, Odena et al., 2017),
    learnt from the real images alone.
    Images are sampled from an exponential moving average of the generator's
    weights, steadier than the last step's. Class counts are exact: the class
    is an input of the generator, never rejection-sampled.

    The networks are sized from the images: grayscale or colour, square or
    not, 8x8 pixels or 64x64.

    Parameters
    ----------
    %(sampling_strategy)s
    %(enlarge)s
    noise_dim : int, default=64
        Size of the generator's noise input.
    generator_width : int, default=64
        Channels of the generator's coarsest grid (at most 4x4), halved at
        every 2x stage (down to 8), so that larger images cost about the same
        per stage.
    critic_width : int, default=64
        Channels of the critic's coarsest grid, halved at every finer stage
        (down to 8).
    augmentations : tuple of str, default=("translation",)
        The differentiable augmentations applied to every image the critic
        and the classifier see, real or generated: ``"translation"`` (shifts
        by up to 1/8 of the side), ``"cutout"`` (a blank rectangle of half the
        side), ``"color"`` (brightness, saturation, contrast). An empty tuple
        turns them off. Cutout and color suit larger images than 8x8 digits.
    diversity_weight : float, default=0.2
        Weight of the mode-seeking term: how much the generator is rewarded
        for making distinct images from distinct noise (for the same class).
        0 turns it off; large values trade class fidelity for variety.
    classifier_weight : float, default=1.0
        With class labels, weight of the auxiliary-classifier term: a class
        head on the critic's features learns the classes from the
        (augmented) real images (its cross-entropy joins the critic's loss
        with this weight), and the generator is penalised for images it does
        not recognise as their class. It keeps the images faithful to their
        class while the mode-seeking term spreads them out; 0 turns it off
        (no class head).
    truncation : float or None, default=None
        Clip the sampling noise to ``[-truncation, truncation]``: fewer
        unusual images, less variety. None samples the full noise.
    %(filter_confidence)s
    %(epochs)s
    %(batch_size)s
    learning_rate : float, default=4e-4
        Adam's step size, for both networks.
    %(image_input)s
    %(device)s
    %(precision)s
    %(random_state)s
    %(verbose)s

    Attributes
    ----------
    module_ : torch.nn.Module
        The generator (weights averaged over the last steps).
    %(history_)s
        The losses: ``critic`` (the hinge loss, without the class
        head's term), ``generator`` (the sum
        of the weighted terms ``adversarial``, ``diversity`` and, with class
        labels, ``classifier``).
    %(image_attributes)s
    %(target_attributes)s

    See Also
    --------
    ImageVAE : A class-conditional convolutional VAE on the same input.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from augment import ImageGAN
    >>> digits = load_digits()
    >>> X, y = digits.images[:200] / 16, digits.target[:200]
    >>> gen = ImageGAN(epochs=2, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(5, y=3)
    >>> X_new.shape, y_new.tolist()
    ((5, 8, 8), [3, 3, 3, 3, 3])
    """

    _parameter_constraints = {
        **ImageGenerator._parameter_constraints,
        "noise_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "generator_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "critic_width": [Interval(numbers.Integral, 1, None, closed="left")],
        "augmentations": [
            SequenceOf(
                str,
                allowed=AUGMENTATIONS.__contains__,
                description=f"each one of {sorted(AUGMENTATIONS)}",
            ),
            StrOptions(set(AUGMENTATIONS)),
        ],
        "diversity_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "classifier_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "truncation": [None, Interval(numbers.Real, 0, None, closed="neither")],
    }

    # 1,000 steps at a step size of 4e-4 recognise more of the images as
    # their class than 2,000 at 2e-4, at half the cost, from 16x16 on; 8x8
    # images (cheap steps) need 2,000 for it (benchmarks/images.py)
    _default_steps = 1000
    _small_image_steps = (64, 2000)
    _average_decay = 0.995  # of the weights sampled from: ~200 last steps

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        noise_dim=64,
        generator_width=64,
        critic_width=64,
        augmentations=("translation",),
        diversity_weight=0.2,
        classifier_weight=1.0,
        truncation=None,
        filter_confidence=None,
        epochs=None,
        batch_size=64,
        learning_rate=4e-4,
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
        self.noise_dim = noise_dim
        self.generator_width = generator_width
        self.critic_width = critic_width
        self.augmentations = augmentations
        self.diversity_weight = diversity_weight
        self.classifier_weight = classifier_weight
        self.truncation = truncation
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
        network = _Generator(
            self.image_shape_, self._n_classes, self.noise_dim, self.generator_width
        )
        self.module_ = init_parameters(network, init)

    def _train(self, images, labels, generator):
        policy = self.augmentations
        policy = (policy,) if isinstance(policy, str) else tuple(policy)
        init = self._init_generator()
        self._build_modules(init)
        network = self.module_.to(images.device)
        # with class labels, the critic also learns the classes from the
        # (augmented) real images, on the same convolutions (AC-GAN): the
        # generator is told how well its images are recognised as their class
        classify = labels is not None and bool(self.classifier_weight)
        critic = _Critic(self.image_shape_, self._n_classes, self.critic_width)
        critic = spectral_norm(init_parameters(critic, init))
        if classify:  # a free linear head: no spectral norm on the logits
            critic.classify(init)
        critic = critic.to(images.device)
        average = AveragedModel(
            network,
            multi_avg_fn=get_ema_multi_avg_fn(self._average_decay),
            use_buffers=True,
        )
        networks = {"generator": network, "critic": critic}
        optimisers = {
            name: torch.optim.Adam(
                net.parameters(), lr=self.learning_rate, betas=(0.5, 0.999)
            )
            for name, net in networks.items()
        }

        def seen(batch):  # what the critic sees: augmented images
            return augment(batch, policy, generator)

        def step(index):
            real = images[index]
            label = fake_label = None
            if labels is not None:
                label = labels[index]
                # the two halves of the generated batch share their classes,
                # for the mode-seeking pairs
                pairs = torch.arange(len(index), device=index.device) % (
                    max(len(index) // 2, 1)
                )
                fake_label = label[pairs]
            noise = network.noise(len(index), generator)
            fake = network(noise, fake_label)
            real_score, real_logits = critic(seen(real), label)
            fake_score, _ = critic(seen(fake.detach()), fake_label)
            hinge = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
            critic_loss = hinge
            if classify:
                known = F.cross_entropy(real_logits, label)
                critic_loss = hinge + self.classifier_weight * known
            update(optimisers["critic"], critic_loss)
            # the generator's terms: gradients through the critic to the
            # images, none for its own weights
            with frozen(critic):
                score, logits = critic(seen(fake), fake_label)
            losses = {
                "adversarial": -score.mean(),
                "diversity": self.diversity_weight * _mode_seeking(fake, noise),
            }
            if classify:
                recognised = F.cross_entropy(logits, fake_label)
                losses["classifier"] = self.classifier_weight * recognised
            generator_loss = sum(losses.values())
            update(optimisers["generator"], generator_loss)
            average.update_parameters(network)
            return {"critic": hinge, "generator": generator_loss, **losses}

        for net in networks.values():
            net.train()
        history = self._run_epochs(step, len(images), generator)
        self.module_ = average.module.eval()
        return history

    def _generate(self, labels, n_samples, generator, conditions=()):
        network = self.module_.eval()  # batch norm: running statistics
        noise = network.noise(n_samples, generator)
        if self.truncation is not None:
            noise = noise.clamp(-self.truncation, self.truncation)
        return in_blocks(network, noise, labels, size=1024)


class _Generator(nn.Module):
    """Noise and a class (one-hot) to an image, values in [-1, 1]."""

    def __init__(self, shape, n_classes, noise_dim, width):
        super().__init__()
        self.n_classes, self.noise_dim = n_classes, noise_dim
        self.decoder = ConvDecoder(noise_dim + n_classes, shape, width)

    def noise(self, n, generator):
        shape, device = (n, self.noise_dim), generator.device
        return torch.randn(shape, generator=generator, device=device)

    def forward(self, noise, labels):
        if labels is not None:
            noise = torch.cat([noise, F.one_hot(labels, self.n_classes)], dim=1)
        return torch.tanh(self.decoder(noise))


class _Critic(nn.Module):
    """Scores an image against its class: a linear score of pooled
    convolutional features plus their inner product with the class's
    embedding (the projection critic). After :meth:`classify`, it also gives
    class logits from the same features (an auxiliary classifier, AC-GAN)."""

    def __init__(self, shape, n_classes, width):
        super().__init__()
        self.encoder = ConvEncoder(shape, width)
        features = self.encoder.out_channels
        self.score = nn.Linear(features, 1)
        self.embedding = nn.Embedding(n_classes, features) if n_classes else None
        self.n_classes, self.logits = n_classes, None

    def classify(self, init):
        """Add the class head (drawn from ``init``)."""
        head = nn.Linear(self.encoder.out_channels, self.n_classes)
        self.logits = init_parameters(head, init)

    def forward(self, images, labels):
        """The scores, and the class logits (None without the head)."""
        features = F.leaky_relu(self.encoder(images), 0.2)
        pooled = features.sum(dim=(2, 3))
        score = self.score(pooled).squeeze(1)
        if labels is not None:
            score = score + (self.embedding(labels) * pooled).sum(dim=1)
        if self.logits is None:
            return score, None
        return score, self.logits(pooled)


def _mode_seeking(images, noise):
    """The mode-seeking term (MSGAN): pairs of rows of the batch, small when
    their images differ by more than their noise does. The inverse of the
    ratio keeps it bounded as the ratio grows."""
    half = len(images) // 2
    if half == 0:
        return images.new_zeros(())
    image_gap = (images[:half] - images[half : 2 * half]).abs().mean(dim=(1, 2, 3))
    noise_gap = (noise[:half] - noise[half : 2 * half]).abs().mean(dim=1)
    return (1 / (image_gap / noise_gap + 1e-5)).mean()

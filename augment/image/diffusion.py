"""ImageDiffusion: a class-conditional diffusion model with a few-step sampler."""

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .._docstrings import fill_doc
from .._validation import check_count
from ..nn import cosine_schedule, in_blocks, init_parameters, time_embedding, update
from ..nn.conv import stage_widths, upsampling_plan
from .generator import ImageGenerator, check_images


@fill_doc
class ImageDiffusion(ImageGenerator):
    """Class-conditional diffusion model for images, as an over-sampler.

    Images are noised along the variance-preserving cosine schedule,
    ``x_t = cos(pi t / 2) x_0 + sin(pi t / 2) noise`` for a time ``t`` in
    [0, 1], and a small convolutional U-Net, given ``x_t``, ``t`` and the
    class, learns to predict the velocity ``cos(pi t / 2) noise - sin(pi t /
    2) x_0`` (v-prediction). The class enters as an embedding added to the
    time's; it is replaced by a "no class" embedding for a share of the
    training images (``condition_dropout``), so that the same network also
    learns the unconditional model, for classifier-free guidance.

    Sampling runs a deterministic DDIM sampler of ``sampling_steps`` steps
    from pure noise; at every step the predicted clean image is clipped to
    the pixel range, so that the images stay in it without piling up at its
    bounds. Images are sampled from an exponential moving average of the
    network's weights. Class counts are exact: the class is an input of the
    network, never rejection-sampled.

    With ``variation_strength`` set, :meth:`fit_resample` generates
    variations of the real images instead (as SDEdit, Meng et al., 2022,
    and DA-Fusion, Trabucco et al., 2023): every generated image starts
    from a real image of its class, noised to the time
    ``t = variation_strength``, and the sampler runs from there back to 0
    (``ceil(variation_strength * sampling_steps)`` steps). It keeps the
    real image's layout and redraws its details. The real images of a class
    take turns as sources, so that each is varied about equally often.
    :meth:`vary` does the same for any images after a fit; :meth:`sample`
    always starts from pure noise (the model holds no images).

    The U-Net is sized from the images: a stage per 2x scale down to a grid
    of at most 4x4, its channels set at that grid (``width``) and halved at
    every finer stage (down to 8), so that every stage costs about the same
    and a larger image adds stages, not cost per stage.

    Parameters
    ----------
    %(sampling_strategy)s
    %(enlarge)s
    width : int, default=64
        Channels of the U-Net's coarsest grid (at most 4x4), halved at every
        finer stage (down to 8).
    sampling_steps : int, default=20
        Steps of the sampler from noise to images: a network pass each (two
        with guidance other than 0 or 1). Fewer are faster, more follow the
        learnt model more closely.
    guidance_scale : float, default=2.0
        Classifier-free guidance: the network's output is ``unconditional +
        guidance_scale * (conditional - unconditional)``. 1 is the plain
        conditional model (one network pass a step, the others two), 0 the
        unconditional one (images of any class); above 1 the images are more
        typical of their class, at some loss of variety.
    condition_dropout : float in [0, 1), default=0.1
        With class labels: share of the training images whose class is hidden
        from the network, which so learns the unconditional model that
        guidance uses.
    variation_strength : float in (0, 1] or None, default=None
        None: :meth:`fit_resample` samples from pure noise, as
        :meth:`sample`. A float: its generated images are variations of the
        real images of their class, noised to this time of the schedule and
        denoised again (near 0: close copies of the real images; 1: pure
        noise, the same images as None). Read when sampling: it sets
        :meth:`vary`'s strength too. On the digits at 10 per class (CNN,
        five seeds), 0.3 with ``guidance_scale=1`` held even with classic
        augmentation (+0.0 points) where images from noise cost 0.6; it
        did not add to it (see the user guide's image benchmark).
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
        The denoising network (weights averaged over the last steps).
    %(history_)s
        The loss: ``loss``, the squared error of the predicted velocity.
    %(image_attributes)s
    %(target_attributes)s

    See Also
    --------
    ImageGAN : A class-conditional GAN on the same input.
    ImageVAE : A class-conditional convolutional VAE on the same input.
    TabularDiffusion : A diffusion model for tables.

    Notes
    -----
    The process is the variance-preserving one of Ho et al. (2020) with the
    cosine schedule of Nichol & Dhariwal (2021), v-prediction (Salimans & Ho,
    2022), DDIM's deterministic sampler (Song et al., 2021) and
    classifier-free guidance (Ho & Salimans, 2022).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from augment import ImageDiffusion
    >>> digits = load_digits()
    >>> X, y = digits.images[:200] / 16, digits.target[:200]
    >>> gen = ImageDiffusion(epochs=2, random_state=0).fit(X, y)
    >>> X_new, y_new = gen.sample(5, y=3)
    >>> X_new.shape, y_new.tolist()
    ((5, 8, 8), [3, 3, 3, 3, 3])

    Variations of real images (two of each of the first three):

    >>> gen.set_params(variation_strength=0.3)
    ImageDiffusion(epochs=2, random_state=0, variation_strength=0.3)
    >>> X_var, y_var = gen.vary(X[:3], y[:3], n_variations=2, random_state=0)
    >>> X_var.shape, y_var.tolist()
    ((6, 8, 8), [0, 0, 1, 1, 2, 2])
    """

    _parameter_constraints = {
        **ImageGenerator._parameter_constraints,
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "sampling_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "guidance_scale": [Interval(numbers.Real, 0, None, closed="left")],
        "condition_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "variation_strength": [None, Interval(numbers.Real, 0, 1, closed="right")],
    }

    # a step costs about 57, 94 and 190 ms of CPU at 8x8, 16x16 and 32x32
    # (batches of 64, one thread): 600 steps keep a default fit on 100
    # images within a minute at 16x16 and two at 32x32; 8x8 images (cheap
    # steps) get 1,000 (benchmarks/images.py)
    _default_steps = 600
    _small_image_steps = (64, 1000)
    _average_decay = 0.995  # of the weights sampled from: ~200 last steps

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        enlarge=None,
        width=64,
        sampling_steps=20,
        guidance_scale=2.0,
        condition_dropout=0.1,
        variation_strength=None,
        filter_confidence=None,
        epochs=None,
        batch_size=64,
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
        self.width = width
        self.sampling_steps = sampling_steps
        self.guidance_scale = guidance_scale
        self.condition_dropout = condition_dropout
        self.variation_strength = variation_strength
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
        network = _UNet(self.image_shape_, self._n_classes, self.width)
        self.module_ = init_parameters(network, init)

    def _train(self, images, labels, generator):
        self._build_modules(self._init_generator())
        network = self.module_.to(images.device).train()
        average = AveragedModel(
            network,
            multi_avg_fn=get_ema_multi_avg_fn(self._average_decay),
            use_buffers=True,
        )
        optimiser = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        random = dict(generator=generator, device=images.device)

        def step(index):
            x0 = images[index]
            n = len(index)
            label = None
            if labels is not None:  # hidden for some: the unconditional model
                label = labels[index]
                hidden = torch.rand(n, **random) < self.condition_dropout
                label = label.masked_fill(hidden, network.no_class)
            t = torch.rand(n, **random)
            noise = torch.randn(x0.shape, **random)
            alpha, sigma = (s[:, None, None, None] for s in cosine_schedule(t))
            velocity = alpha * noise - sigma * x0
            predicted = network(alpha * x0 + sigma * noise, t, label)
            loss = F.mse_loss(predicted, velocity)
            update(optimiser, loss)
            average.update_parameters(network)
            return {"loss": loss}

        history = self._run_epochs(step, len(images), generator)
        self.module_ = average.module.eval()
        return history

    def _generate(self, labels, n_samples, generator, conditions=(), sources=None):
        # sources: the images (model space) that variations start from
        network = self.module_.eval()
        shape = (n_samples, *self.image_shape_)
        x = torch.randn(shape, generator=generator, device=generator.device)
        start, steps = 1.0, self.sampling_steps
        if sources is not None and self.variation_strength < 1:
            start = float(self.variation_strength)
            steps = max(math.ceil(start * steps), 1)
            alpha, sigma = cosine_schedule(torch.tensor(start))
            x = alpha.item() * sources + sigma.item() * x

        def block(x, labels):
            return network.sample(x, labels, steps, self.guidance_scale, start)

        return in_blocks(block, x, labels, size=1024)

    # ------------------------------------------------------- variations
    def _synthetic_rows(self, data, y_info, n_samples, labels):
        if self.variation_strength is None:
            return super()._synthetic_rows(data, y_info, n_samples, labels)
        # fit_resample: the real images of each class take turns as sources
        real_labels = None
        if y_info.kind == "classes":
            real_labels = self._class_index(y_info.values)
        index = _turns(real_labels, labels, len(data), n_samples)
        rows = self._vary_rows(data[index], labels, self._next_seed())
        return rows, None if labels is None else self.classes_[labels]

    def _vary_rows(self, images, labels, seed):
        """Variations (internal form) of ``images`` (internal form), one
        each, of class index ``labels`` (None without classes)."""
        device = self._ready_device()
        sources = torch.as_tensor(self._input_format.encode(images), device=device)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long, device=device)
        n, missed = len(images), []
        with torch.no_grad(), self._precision(device).autocast():
            rows = self._generate_block(
                labels,
                n,
                generator,
                slice(0, n),
                missed=missed,
                sources=sources.clamp(-1, 1),
            )
        self._warn_missed(missed, n)
        data, _ = self._decode(rows.float().cpu().numpy(), seed)
        return data

    def vary(self, X, y=None, *, n_variations=1, random_state=None):
        """Variations of the images ``X``: each noised to the time
        ``variation_strength`` and denoised by the fitted model.

        Parameters
        ----------
        X : array-like
            Images of the fitted shape, in any layout ``fit`` accepts.
        y : array-like of shape (n_images,) or None, default=None
            The class of each image (training labels), required when fitted
            with class labels: the variations are of that class.
        n_variations : int, default=1
            Variations of every image.
        random_state : int or None, default=None
            Seeds the noise (the same value gives the same variations); None
            draws from the model's own sequence.

        Returns
        -------
        X_new : ndarray, DataFrame or list
            ``n_variations * n_images`` images, those of ``X[0]`` first, in
            the format ``fit`` was given (filtered by ``filter_confidence``
            if set).
        y_new : ndarray, Series or list
            Their classes (``y`` repeated); only when fitted with labels.
        """
        check_is_fitted(self)
        if self.variation_strength is None:
            raise ValueError(
                "vary needs variation_strength, the time of the schedule the "
                "images are noised to: set it, say set_params("
                "variation_strength=0.5)."
            )
        n_variations = check_count(n_variations, "n_variations")
        images, _ = check_images(
            X,
            "X",
            image_shape=self.image_shape,
            channels_last=self.channels_last,
            pixel_range=self.pixel_range,
            min_images=1,
        )
        if images.shape[1:] != tuple(self.image_shape_):
            raise ValueError(
                f"X has images of shape {images.shape[1:]}; this "
                f"{type(self).__name__} was fitted on {tuple(self.image_shape_)}."
            )
        labels = None
        if self.target_type_ == "classes":
            if y is None:
                raise ValueError(
                    "y is required: this generator was fitted with class labels, "
                    "and each variation is of its image's class."
                )
            y = np.asarray(y)
            if y.shape != (len(images),):
                raise ValueError(
                    f"y must have one label per image ({len(images)}); got "
                    f"shape {y.shape}."
                )
            labels = np.repeat(self._class_index(y), n_variations)
        else:
            self._label_indices(len(images), y)  # y given: the error
        stream = self._stream(random_state)
        rows = self._vary_rows(
            np.repeat(images, n_variations, axis=0), labels, self._next_seed(stream)
        )
        X_new = self._input_format.restore(rows)
        if labels is None:
            return X_new
        return X_new, self._target_format.restore(self.classes_[labels])


def _turns(real_labels, labels, n_real, n_samples):
    """Index of the real image each of ``n_samples`` rows varies: the real
    images of a row's class (of class index ``labels``; all of them without
    classes) in turn, in their order."""
    if labels is None:
        return np.arange(n_samples) % n_real
    n_classes = max(real_labels.max(), labels.max(initial=0)) + 1
    order = np.argsort(real_labels, kind="stable")  # real images by class
    counts = np.bincount(real_labels, minlength=n_classes)
    # the rank of every row among the rows of its class
    row_counts = np.bincount(labels, minlength=n_classes)
    rank = np.empty(n_samples, dtype=np.int64)
    rank[np.argsort(labels, kind="stable")] = np.arange(n_samples) - np.repeat(
        np.cumsum(row_counts) - row_counts, row_counts
    )
    return order[np.cumsum(counts)[labels] - counts[labels] + rank % counts[labels]]


def _norm(channels):
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class _ResBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU, the second's input
    scaled and shifted by the embedding of the time and class, and a skip
    connection."""

    def __init__(self, channels_in, channels, embedding_dim):
        super().__init__()
        self.norm1, self.norm2 = _norm(channels_in), _norm(channels)
        self.conv1 = nn.Conv2d(channels_in, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, 2 * channels)
        self.skip = (
            nn.Conv2d(channels_in, channels, 1)
            if channels_in != channels
            else nn.Identity()
        )

    def forward(self, x, embedding):
        h = self.conv1(F.silu(self.norm1(x)))
        # a scale and shift after the norm, which would remove a shift before it
        scale, shift = self.embedding(embedding)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class _UNet(nn.Module):
    """Noisy images, their time and class to the predicted velocity.

    A residual block per stage on the way down (then a stride-2 convolution),
    two at the coarsest grid (at most 4x4), and on the way up a nearest
    upsampling to the skip's size, a convolution and a residual block on the
    two joined. Label ``n_classes`` (``no_class``) is the unconditional one.
    """

    time_dim = 32

    def __init__(self, shape, n_classes, width):
        super().__init__()
        channels, height, wide = shape
        stages, _ = upsampling_plan(height, wide)
        widths = stage_widths(stages, width)[::-1]  # fine to coarse
        dim = widths[-1]
        self.no_class = n_classes
        self.time = nn.Sequential(
            nn.Linear(self.time_dim, dim), nn.SiLU(), nn.Linear(dim, dim)
        )
        self.classes = nn.Embedding(n_classes + 1, dim) if n_classes else None
        self.start = nn.Conv2d(channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList(_ResBlock(w, w, dim) for w in widths[:-1])
        self.downsample = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.middle = nn.ModuleList(_ResBlock(dim, dim, dim) for _ in range(2))
        self.upsample = nn.ModuleList(
            nn.Conv2d(b, a, 3, padding=1)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up = nn.ModuleList(_ResBlock(2 * w, w, dim) for w in widths[:-1])
        self.out = nn.Sequential(
            _norm(widths[0]), nn.SiLU(), nn.Conv2d(widths[0], channels, 3, padding=1)
        )

    def forward(self, x, t, labels):
        embedding = self.time(time_embedding(t, self.time_dim))
        if self.classes is not None:
            embedding = embedding + self.classes(labels)
        embedding = F.silu(embedding)
        h = self.start(x.contiguous(memory_format=torch.channels_last))
        skips = []
        for block, down in zip(self.down, self.downsample, strict=True):
            h = block(h, embedding)
            skips.append(h)
            h = down(h)
        for block in self.middle:
            h = block(h, embedding)
        for block, up in zip(self.up[::-1], self.upsample[::-1], strict=True):
            skip = skips.pop()
            h = up(F.interpolate(h, size=skip.shape[2:], mode="nearest"))
            h = block(torch.cat([h, skip], dim=1), embedding)
        # float32 under autocast too: the losses and the sampler's steps
        return self.out(h).float()

    def _guided(self, x, t, labels, guidance):
        if labels is None or guidance == 1:
            return self(x, t, labels)
        unconditional = torch.full_like(labels, self.no_class)
        if guidance == 0:
            return self(x, t, unconditional)
        both = self(
            x.repeat(2, 1, 1, 1), t.repeat(2), torch.cat([labels, unconditional])
        )
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

    def sample(self, x, labels, steps, guidance, start=1.0):
        """Images from ``x``, noise or noised images at the time ``start``:
        deterministic DDIM steps from ``start`` to 0, the predicted clean
        image clipped to [-1, 1] at every step."""
        times = torch.linspace(start, 0.0, steps + 1, device=x.device)
        for t, s in zip(times[:-1], times[1:], strict=True):
            velocity = self._guided(x, t.expand(len(x)), labels, guidance)
            alpha_t, sigma_t = cosine_schedule(t)
            alpha_s, sigma_s = cosine_schedule(s)
            x0 = (alpha_t * x - sigma_t * velocity).clamp(-1, 1)
            noise = (x - alpha_t * x0) / sigma_t
            x = alpha_s * x0 + sigma_s * noise
        return x

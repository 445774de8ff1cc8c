"""ImageGenerator: the data hooks of BaseGenerator for images.

Images come in as arrays ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)``,
or flat ``(N, H*W*C)`` with ``image_shape``; uint8 in [0, 255], or any other
numbers in ``pixel_range``. Internally they are ``(N, C, H, W)`` arrays of the
caller's dtype (so that real images come back from ``fit_resample``
untouched); the model space is float32 in [-1, 1]. An image model subclasses
:class:`ImageGenerator` and implements only ``_train`` and ``_generate``,
given ``image_shape_`` to size its networks.

With class labels and ``filter_confidence``, the layer also screens what
any model generates: a small classifier learns the classes from the real
images at fit time, and sampling keeps, row by row, the first of up to
``_filter_rounds`` candidates that it assigns to the class asked for with
at least that probability.
"""

import numbers
import warnings

import numpy as np
import pandas as pd
import scipy.sparse
import torch
import torch.nn.functional as F
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval
from torch import nn

from .._validation import SequenceOf, record_feature_names
from ..base import BaseGenerator
from ..nn import ConvEncoder, init_parameters, run_epochs, update
from .augmentation import augment

_CHANNELS = (1, 3, 4)  # the channel counts told apart from a side without help


class ImageGenerator(BaseGenerator):
    """Base class of the image generators. Not for direct use."""

    _parameter_constraints = {
        **BaseGenerator._parameter_constraints,
        "image_shape": [
            None,
            SequenceOf(
                numbers.Integral,
                lengths=(2, 3),
                allowed=lambda v: v >= 1 or v == -1,
                description="positive, or one -1",
            ),
        ],
        "channels_last": [None, "boolean"],
        "pixel_range": [
            None,
            SequenceOf(
                numbers.Real, lengths=(2,), increasing=True, description="low < high"
            ),
        ],
        "filter_confidence": [None, Interval(numbers.Real, 0, 1, closed="neither")],
    }

    _unit = "images"  # what a row is, in the shared docstrings
    # the filter's classifier: optimiser steps, batch, step size, channels of
    # its coarsest grid; and the candidates a sampled image may take at most
    _filter_steps = 300
    _filter_batch_size = 64
    _filter_learning_rate = 2e-3
    _filter_width = 32
    _filter_rounds = 16

    # an epoch of a small image set is a single step: count steps, not epochs
    _default_epoch_bounds = (1, None)
    _block_size = 256  # images per block of the sampling stream
    #: ``(pixels, steps)``: images of at most ``pixels`` pixels a channel
    #: train for about ``steps`` optimiser steps under ``epochs=None``, larger
    #: ones for ``_default_steps`` (None: every size the same)
    _small_image_steps = None

    def _budget_steps(self):
        small = self._small_image_steps
        if small is not None and np.prod(self.image_shape_[1:]) <= small[0]:
            return small[1]
        return super()._budget_steps()

    def _check_X(self, X):
        return check_images(
            X,
            "X",
            image_shape=self.image_shape,
            channels_last=self.channels_last,
            pixel_range=self.pixel_range,
        )

    def _check_class_counts(self, classes, counts):
        few = classes[counts < 2]
        if len(few):
            raise ValueError(
                f"Classes {few.tolist()} have fewer than two images; an image "
                "generator needs at least two of every class."
            )

    def _fit_encoding(self, images, y_info):
        if y_info.kind == "continuous":
            raise ValueError(
                f"{type(self).__name__} conditions on class labels; y is "
                "continuous. Pass class labels, or no y for unlabelled images."
            )
        self.image_shape_ = images.shape[1:]
        n_pixels = np.prod(self.image_shape_)
        record_feature_names(self, n_pixels, self._input_format.columns)
        return self._input_format.encode(images)

    def _decode(self, rows, seed, labels=None, **options):
        # the sampling options (the filter's record of the rows it missed)
        # are the model's: an image decodes alone
        return self._input_format.decode(rows), None

    # ---------------------------------------------------------- the filter
    def _fit_conditioning(self, data, labels):
        """Train the filter's classifier on the real images (model space),
        with class labels and ``filter_confidence`` set; :func:`augment.load`
        (``data`` None) rebuilds it empty if the saved model had one."""
        if data is None:
            if hasattr(self, "filter_history_"):
                self._build_filter()
            return
        for name in ("filter_classifier_", "filter_history_"):
            if hasattr(self, name):
                delattr(self, name)
        if self.filter_confidence is None or labels is None:
            return
        # its own seeds: the model trains and samples as it would without it
        seeds = np.random.SeedSequence([self._seed, 1]).generate_state(2)
        with torch.random.fork_rng(devices=[]):  # layers draw default weights
            self._build_filter(int(seeds[0]))
        network = self.filter_classifier_.to(data.device).train()
        generator = torch.Generator(device=data.device).manual_seed(int(seeds[1]))
        optimiser = torch.optim.Adam(
            network.parameters(), lr=self._filter_learning_rate
        )

        def step(index):  # on shifted images, as a classifier learns best
            shifted = augment(data[index], ("translation",), generator)
            loss = F.cross_entropy(network(shifted), labels[index])
            update(optimiser, loss)
            return {"loss": loss}

        batch = min(self._filter_batch_size, len(data))
        epochs = -(-self._filter_steps // max(len(data) // batch, 1))
        self.filter_history_ = run_epochs(
            step,
            len(data),
            epochs=epochs,
            batch_size=batch,
            generator=generator,
            verbose=self.verbose,
            desc=f"{type(self).__name__} filter",
            precision=self._precision(data.device),
        )
        network.eval()

    def _build_filter(self, seed=0):
        network = _FilterClassifier(
            self.image_shape_, self._n_classes, self._filter_width
        )
        init = torch.Generator().manual_seed(seed)
        self.filter_classifier_ = init_parameters(network, init)

    def _sample_rows(self, n_samples, labels, stream=None, **options):
        missed = []  # per block: the classes of the rows the filter missed
        rows = super()._sample_rows(n_samples, labels, stream, missed=missed, **options)
        self._warn_missed(missed, n_samples, stacklevel=5)
        return rows

    def _warn_missed(self, missed, n_samples, stacklevel=4):
        """A warning of the rows of ``n_samples`` that stayed below
        ``filter_confidence`` (``missed``: their classes, per block, as
        :meth:`_generate_block` recorded them)."""
        short = np.concatenate([np.zeros(0, dtype=np.int64), *missed])
        if len(short):
            warnings.warn(
                f"{type(self).__name__}: {len(short)} of {n_samples} images "
                f"(classes {self.classes_[np.unique(short)].tolist()[:20]}) "
                f"stayed below filter_confidence={self.filter_confidence:g} in "
                f"{self._filter_rounds} candidates each; they are the most "
                "confident of their candidates. Lower filter_confidence, or "
                "train the generator longer.",
                UserWarning,
                stacklevel=stacklevel,
            )

    def _generate_block(self, labels, size, generator, kept, missed=None, **options):
        """The filter: ``missed`` (a list) gets the classes of the kept rows
        that stayed below ``filter_confidence``."""
        rows = self._generate(labels, size, generator, **options)
        if self.filter_confidence is None or labels is None:
            return rows
        classifier = getattr(self, "filter_classifier_", None)
        if classifier is None:
            raise ValueError(
                f"filter_confidence={self.filter_confidence:g}, but this "
                f"{type(self).__name__} was fitted without it: the filter's "
                "classifier learns at fit time. Fit again with filter_confidence "
                "set, or set it to None."
            )
        classifier.eval()
        rows_kept = torch.arange(size, device=labels.device)[kept]

        def confidence(candidates):
            logits = classifier(candidates).float()
            return logits.softmax(dim=1).gather(1, labels[:, None]).squeeze(1)

        # a row keeps its first candidate confident enough, else its most
        # confident one; it depends only on its own candidates, whatever the
        # others' labels (rounds stop only once every kept row is done)
        best = confidence(rows)
        for _ in range(self._filter_rounds - 1):
            done = best >= self.filter_confidence
            if done[rows_kept].all():
                break
            candidates = self._generate(labels, size, generator, **options)
            score = confidence(candidates)
            better = ~done & (score > best)
            rows = torch.where(better[:, None, None, None], candidates, rows)
            best = torch.where(better, score, best)
        short = rows_kept[best[rows_kept] < self.filter_confidence]
        if missed is not None:
            missed.append(labels[short].cpu().numpy())
        return rows

    def _concat(self, *parts):
        return np.concatenate(parts)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.string = False
        tags.input_tags.categorical = False
        tags.input_tags.three_d_array = True
        return tags


class _FilterClassifier(nn.Module):
    """The filter's classifier: the convolutions of an encoder, their (at
    most 4x4) feature map flattened into class logits."""

    def __init__(self, shape, n_classes, width):
        super().__init__()
        self.encoder = ConvEncoder(shape, width)
        grid = self.encoder.out_grid
        features = self.encoder.out_channels * grid[0] * grid[1]
        self.logits = nn.Linear(features, n_classes)

    def forward(self, images):
        return self.logits(self.encoder(images).flatten(1))


def check_images(
    X, name, *, image_shape=None, channels_last=None, pixel_range=None, min_images=2
):
    """Validate images and return them as ``(N, C, H, W)`` with their format.

    Parameters
    ----------
    X : array-like, list of arrays or DataFrame
        ``(N, H, W)``, ``(N, C, H, W)``, ``(N, H, W, C)``, or flat
        ``(N, H*W*C)`` with ``image_shape``.
    name : str
        The argument's name, for the error messages.
    image_shape : tuple of int or None
        The shape a flat row is reshaped to (numpy's rules: one entry may be
        -1): ``(H, W)`` or three entries, read as a 4-d array's last three.
    channels_last : bool or None
        Whether 4-d images (or a 3-entry ``image_shape``) hold the channels
        last; None tells them apart by the axis of 1, 3 or 4 entries.
    pixel_range : tuple of (low, high) or None
        The range of non-uint8 pixel values; None: the images' own min and max.
    min_images : int, default=2
        The fewest images accepted.

    Returns
    -------
    images : ndarray of shape (N, C, H, W)
        The caller's values and dtype, in a new array.
    image_format : ImageFormat
        How to give images back as the caller passed them, and the pixel scale.
    """
    kind, dtypes = "array", None
    if scipy.sparse.issparse(X):
        raise TypeError(f"{name} is a sparse matrix; images must be dense arrays.")
    if isinstance(X, pd.DataFrame):
        # flat images, one pixel a column (sparse columns too)
        kind, dtypes, X = "dataframe", X.dtypes, X.to_numpy()
    elif isinstance(X, list):
        kind = "list"
        shapes = {np.shape(image) for image in X}
        if len(shapes) > 1:
            first = np.shape(X[0])
            other = next(i for i, image in enumerate(X) if np.shape(image) != first)
            raise ValueError(
                f"{name} mixes image sizes: {first} at index 0 and "
                f"{np.shape(X[other])} at index {other}; resize them to one size."
            )
    array = check_array(
        X,
        dtype="numeric",
        allow_nd=True,
        ensure_min_samples=min_images,
        input_name=name,
    )
    if array.dtype.kind not in "biuf" or array.dtype == bool:
        raise TypeError(f"{name} has dtype {array.dtype}; images hold numbers.")
    flat = array.ndim == 2
    if flat:
        if image_shape is None:
            raise ValueError(
                f"{name} is 2-d {array.shape}: flat images need image_shape, "
                "(height, width) or (channels, height, width), to be read."
            )
        array = array.reshape(len(array), *_resolve_shape(image_shape, array.shape[1]))
    elif image_shape is not None and not _matches(image_shape, array.shape[1:]):
        raise ValueError(
            f"{name} has images of shape {array.shape[1:]}, but "
            f"image_shape={tuple(image_shape)}; image_shape is for flat images."
        )
    if array.ndim == 3:
        layout, images = "hw", array[:, None]
    elif array.ndim == 4:
        last = _channels_last(array.shape, channels_last, name)
        layout = "hwc" if last else "chw"
        images = array.transpose(0, 3, 1, 2) if last else array
    else:
        raise ValueError(
            f"{name} has shape {array.shape}: images must be (N, H, W), "
            "(N, C, H, W), (N, H, W, C), or flat (N, H*W*C) with image_shape."
        )
    low, high = _pixel_range(images, pixel_range, name)
    image_format = ImageFormat(kind, layout, flat, array.dtype, low, high, dtypes)
    return np.array(images, copy=True), image_format


def _resolve_shape(image_shape, n_pixels):
    shape = tuple(image_shape)
    if len(shape) not in (2, 3) or not all(
        isinstance(s, numbers.Integral) and (s > 0 or s == -1) for s in shape
    ):
        raise ValueError(
            f"image_shape must be (height, width) or three positive ints (one may "
            f"be -1); got {image_shape!r}."
        )
    known = -int(np.prod(shape)) if -1 in shape else int(np.prod(shape))
    if (
        shape.count(-1) > 1
        or n_pixels % known
        or (-1 not in shape and known != n_pixels)
    ):
        raise ValueError(f"image_shape={shape} does not fit rows of {n_pixels} values.")
    return tuple(n_pixels // known if s == -1 else s for s in shape)


def _matches(image_shape, shape):
    return len(image_shape) == len(shape) and all(
        a in (b, -1) for a, b in zip(image_shape, shape, strict=True)
    )


def _channels_last(shape, channels_last, name):
    if channels_last is not None:
        return bool(channels_last)
    first, last = shape[1] in _CHANNELS, shape[-1] in _CHANNELS
    if first == last:
        reason = "either" if first else "neither"
        raise ValueError(
            f"{name} has shape {shape}: {reason} of axes 1 and 3 can be the "
            "channels (1, 3 or 4 of them); pass channels_last=True for "
            "(N, H, W, C) or channels_last=False for (N, C, H, W)."
        )
    return last


def _pixel_range(images, pixel_range, name):
    if images.dtype == np.uint8:
        return 0, 255
    found = (images.min().item(), images.max().item())
    if pixel_range is None:
        low, high = found
        return low, (high if high > low else low + 1)
    if not (
        len(pixel_range) == 2
        and all(isinstance(v, numbers.Real) for v in pixel_range)
        and pixel_range[0] < pixel_range[1]
    ):
        raise ValueError(
            f"pixel_range must be (low, high) with low < high, or None; "
            f"got {pixel_range!r}."
        )
    low, high = pixel_range
    if found[0] < low or found[1] > high:
        raise ValueError(
            f"{name} has pixel values in [{found[0]:g}, {found[1]:g}], outside "
            f"pixel_range=({low:g}, {high:g}). Images are uint8 in [0, 255] or "
            "numbers in pixel_range ((0, 1) by default): rescale them, or set "
            "pixel_range (None takes the training images' own range)."
        )
    return low, high


class ImageFormat:
    """How the caller passed images, to give them back the same way, and the
    pixel scale between their values and the model space [-1, 1]."""

    def __init__(self, kind, layout, flat, dtype, low, high, column_dtypes):
        self.kind, self.layout, self.flat, self.dtype = kind, layout, flat, dtype
        self.low, self.high, self.column_dtypes = low, high, column_dtypes

    @property
    def columns(self):
        """The column names of a DataFrame of flat images, else None."""
        return None if self.column_dtypes is None else self.column_dtypes.index

    def encode(self, images):
        """Caller's pixels ``(N, C, H, W)`` to float32 in [-1, 1]."""
        scaled = (images.astype(np.float32) - self.low) / (self.high - self.low)
        return 2 * scaled - 1

    def decode(self, rows):
        """Model-space rows in [-1, 1] to pixels of the caller's dtype."""
        # in float64: float32 arithmetic would round the bounds themselves
        rows = np.clip(rows.astype(np.float64), -1, 1)
        pixels = self.low + (rows + 1) / 2 * (self.high - self.low)
        if self.dtype.kind in "iu":
            pixels = np.rint(pixels)
        return np.clip(pixels, self.low, self.high).astype(self.dtype)

    def restore(self, images):
        """``(N, C, H, W)`` to the caller's layout and container."""
        if self.layout == "hw":
            images = images[:, 0]
        elif self.layout == "hwc":
            images = images.transpose(0, 2, 3, 1)
        if self.flat:
            images = images.reshape(len(images), -1)
        images = np.ascontiguousarray(images)
        if self.kind == "dataframe":
            frame = pd.DataFrame(images, columns=self.columns)
            return frame.astype(self.column_dtypes)
        return images.tolist() if self.kind == "list" else images

"""Checking and preparing the evaluation's inputs: tables and image arrays.

Everything downstream sees validated copies: tables with the real frame's
column order, and images as float arrays ``(N, C, H, W)`` in [0, 1].
"""

import numpy as np
import pandas as pd

from ..image.generator import check_images as check_image_array
from ..tabular.encoder import column_kind, to_float

# one place decides what a column is, for the generators and the evaluation
KINDS = ("numeric", "datetime", "categorical")
as_float = to_float


def shared_codes(columns):
    """Integer codes of one categorical column in several frames.

    Equal values get equal codes in every frame, whatever their dtypes.

    Returns
    -------
    codes : list of ndarray
        One array per column given; missing values are -1.
    n_values : int
        The number of distinct values.
    """
    values = pd.concat(columns, ignore_index=True).astype(object)
    codes, uniques = pd.factorize(values)
    return np.split(codes, np.cumsum([len(c) for c in columns])[:-1]), len(uniques)


def check_tables(real, synthetic, holdout, target):
    """Validate the three frames; return copies in ``real``'s column order.

    Returns
    -------
    frames : dict
        ``"real"``, ``"synthetic"`` and ``"holdout"`` (None when not given).
    kinds : dict
        Column name -> kind, read from ``real``.
    """
    frames = {"real": real, "synthetic": synthetic, "holdout": holdout}
    for name, frame in frames.items():
        if frame is None and name == "holdout":
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"{name} must be a pandas DataFrame like real, got "
                f"{type(frame).__name__}."
            )
        if len(frame) == 0:
            raise ValueError(f"{name} has no rows.")
        if frame.columns.has_duplicates:
            duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
            raise ValueError(f"{name} has duplicated columns {duplicated}.")
    if real.shape[1] == 0:
        raise ValueError("real has no columns.")
    for name, frame in frames.items():
        if target is not None and frame is not None and target not in frame.columns:
            raise ValueError(f"target={target!r} is not a column of {name}.")
    for name in ("synthetic", "holdout"):
        frame = frames[name]
        if frame is None:
            continue
        missing = [c for c in real.columns if c not in frame.columns]
        extra = [c for c in frame.columns if c not in real.columns]
        if missing or extra:
            raise ValueError(
                f"{name} must have the same columns as real: "
                f"missing {missing}, unexpected {extra}."
            )
        frames[name] = frame[list(real.columns)]
    frames["real"] = real.copy()
    kinds = {column: column_kind(real[column]) for column in real.columns}
    for name in ("synthetic", "holdout"):
        if frames[name] is not None:
            frames[name] = _coerce_like(frames[name], kinds, name)
    return frames, kinds


def _coerce_like(frame, kinds, name):
    """Give ``frame``'s numbers and datetimes the kinds they have in real."""
    frame = frame.copy()
    for column, kind in kinds.items():
        if kind == "categorical" or column_kind(frame[column]) == kind:
            continue
        try:
            if kind == "numeric":
                frame[column] = pd.to_numeric(frame[column])
            else:
                frame[column] = pd.to_datetime(frame[column])
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"Column {column!r} is {kind} in real but {name} holds values of "
                f"dtype {frame[column].dtype} that are not."
            ) from exc
    return frame


def subsample(data, n, rng):
    """At most ``n`` rows of a frame or array (``n=None``: all), in their order."""
    if n is None or len(data) <= n:
        return data
    index = np.sort(rng.choice(len(data), n, replace=False))
    return data.take(index) if isinstance(data, pd.DataFrame) else data[index]


# ---------------------------------------------------------------------- images
def check_images(real, synthetic, holdout, channels_last=None):
    """Validate ``(X, y)`` pairs of images; return them as float NCHW in [0, 1].

    Returns
    -------
    images : dict
        ``"real"``, ``"synthetic"``, ``"holdout"`` -> ``(X, y)`` or None, with
        ``X`` float32 ``(N, C, H, W)`` and ``y`` a 1-d array.
    """
    images = {}
    for name, pair in {
        "real": real,
        "synthetic": synthetic,
        "holdout": holdout,
    }.items():
        if pair is None and name == "holdout":
            images[name] = None
            continue
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise TypeError(
                f"{name} must be a DataFrame (tables) or an (X, y) pair of image "
                f"arrays and labels like real, got {type(pair).__name__}."
            )
        X, y = _as_nchw(pair[0], name, channels_last), np.asarray(pair[1])
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"{name}: y must hold one label per image ({len(X)}), "
                f"got shape {y.shape}."
            )
        images[name] = (X, y)
    shape = images["real"][0].shape[1:]
    for name in ("synthetic", "holdout"):
        if images[name] is not None and images[name][0].shape[1:] != shape:
            raise ValueError(
                f"{name} images have shape {images[name][0].shape[1:]} (C, H, W) but "
                f"real ones have {shape}."
            )
    return images


def _as_nchw(X, name, channels_last):
    """Images as the generators read them (the same layouts, the same errors),
    uint8 or float in [0, 1], as float32 NCHW in [0, 1]."""
    if len(X) == 0:
        raise ValueError(f"{name} has no images.")
    images, image_format = check_image_array(
        X, name, channels_last=channels_last, pixel_range=(0.0, 1.0)
    )
    return (image_format.encode(images) + 1) / 2

"""The one place that turns a ``device`` parameter into a :class:`torch.device`."""

import warnings

import torch


def resolve_device(device):
    """Return the torch device that a ``device`` parameter asks for.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"auto"`` (CUDA when available, else CPU), or anything
        :class:`torch.device` accepts, such as ``"cuda:1"``.

    Returns
    -------
    torch.device
        The device to compute on. A CUDA device that is not available (say a
        model trained on a GPU and loaded on a laptop) falls back to the CPU
        with a warning, so that saved models always load.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device; use 'cpu', 'auto' or e.g. 'cuda:0'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={device!r} but CUDA is not available here; using the CPU.",
            RuntimeWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return resolved

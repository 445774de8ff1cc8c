"""The one place that turns a ``device`` parameter into a :class:`torch.device`."""

import os

import torch


def resolve_device(device):
    """Return the torch device that a ``device`` parameter asks for.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"auto"`` (CUDA when available, else the CPU), or
        anything :class:`torch.device` accepts, such as ``"cuda"`` or
        ``"cuda:1"``.

    Returns
    -------
    torch.device
        The device to compute on. ``"auto"`` picks CUDA when it is available:
        under ``torchrun`` or Ray Train (``LOCAL_RANK`` set) this process's
        own GPU, ``cuda:LOCAL_RANK``; a plain ``"cuda"`` is the current GPU.

    Raises
    ------
    RuntimeError
        A CUDA device is asked for where CUDA is not available, or a GPU
        index past the GPUs there are: never a silent fall-back to the CPU
        (only ``"auto"`` chooses). A model file trained on a GPU still
        loads on a machine without one: :func:`augment.load` moves it to the
        CPU.
    """
    if isinstance(device, str) and device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        local = int(os.environ.get("LOCAL_RANK", 0))
        return torch.device("cuda", local % torch.cuda.device_count())
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device; use 'cpu', 'auto' or e.g. 'cuda:0'."
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={str(device)!r} asks for CUDA, which is not available "
                "here; use device='cpu', or 'auto' to take a GPU only where "
                "there is one."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device={str(device)!r}: there are only "
                f"{torch.cuda.device_count()} CUDA devices here."
            )
    return resolved


def loadable_device(device):
    """The device a loaded model file keeps: its own, or the CPU (with a
    warning) for a CUDA device on a machine without CUDA."""
    import warnings

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved with device={str(device)!r}, but CUDA is not "
            "available here: it is loaded on the CPU (device='cpu').",
            RuntimeWarning,
            stacklevel=3,
        )
        return "cpu"
    return device

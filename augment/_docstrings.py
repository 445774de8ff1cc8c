"""One text per shared parameter and attribute, filled into every generator's docstring.

A class docstring names a shared text with a placeholder on a line of its own,
``%(sampling_strategy)s`` say, indented as the entry it stands for;
:func:`fill_doc` replaces it with the text below. Texts are formatted with what
differs from class to class: the default from the class's own signature
(``{default}``), what a row is (``{rows}``: "rows" or "images", set by a data
layer's ``_unit``) and the default training budget (``{steps}``, from
``_default_steps``, and ``{small_steps}``, from an image model's
``_small_image_steps``).
"""

import inspect
import re
import textwrap

SHARED = {
    # ------------------------------------------------------------ parameters
    "sampling_strategy": """\
sampling_strategy : float, str, dict or callable, default={default}
    How :meth:`fit_resample` balances the classes, exactly as in
    imbalanced-learn: ``"auto"`` (= ``"not majority"``), ``"minority"``,
    ``"not minority"``, ``"all"``; a float (binary only) for the
    minority/majority ratio after resampling; a dict ``{{label: n_{rows}}}``;
    or a callable ``y -> dict``.""",
    "enlarge": """\
enlarge : float >= 1{auto} or None, default={default}
    After balancing, :meth:`fit_resample` adds {rows} (in the balanced class
    proportions) until the data set is ``enlarge`` times its original size.
    The only option without class labels.{auto_text}""",
    "rules": """\
rules : "auto", None or list of "auto" and rules, default={default}
    Rules between columns that every synthetic row keeps by construction
    (see :mod:`augment.tabular.rules`): the model learns the free columns and
    decoding derives the others. ``"auto"`` finds exact linear relations,
    functions (log, exp, square, square root), functional dependencies,
    fixed values given a category and orders in the training rows; a list
    of declared rules keeps those (each checked against the training rows),
    with ``"auto"`` among them to also find the others; None keeps no rule.
    With differential privacy on, ``"auto"`` finds nothing (rules found in
    the rows would escape the privacy budget): declare the public rules.""",
    "epochs": """\
epochs : int or None, default={default}
    Passes over the data (``n_{rows} / batch_size`` optimiser steps each).
    None trains for about {steps:,} optimiser steps{bounds}: enough
    for small data sets, bounded for large ones.{small_steps}{private_epochs}""",
    "epochs_early_stopping": """\
epochs : int or None, default={default}
    Passes over the data (``n_{rows} / batch_size`` optimiser steps each).
    None holds out a tenth of the {rows} (16 to 5,000; none below 64) and
    trains on the others for at most about {steps:,} optimiser
    steps{bounds}, stopping once the held-out loss has not improved for 10
    epochs (or a tenth of that budget, if more), with the weights of the
    best epoch: the model stops before it learns its training {rows} by
    heart. An int trains on every row for exactly that many epochs.""",
    "batch_size": """\
batch_size : int{or_none}, default={default}
    {Rows} per optimiser step.{auto_batch_size}""",
    "learning_rate": """\
learning_rate : float{or_none}, default={default}
    Adam's step size.{auto_learning_rate}""",
    "image_input": """\
image_shape : tuple of int or None, default=None
    For flat input ``(n_images, n_pixels)`` only: the shape of one image,
    ``(height, width)`` or three entries (read as in ``channels_last``); one
    entry may be -1, as in :func:`numpy.reshape`.
channels_last : bool or None, default=None
    Whether 4-d images are ``(N, H, W, C)``. None tells from the shape (the
    axis of 1, 3 or 4 entries is the channels) and raises when both could
    be, as for ``(N, 3, 3, 3)``.
pixel_range : tuple of (low, high) or None, default=(0.0, 1.0)
    The values of pixels that are not uint8 (uint8 pixels are 0 to 255);
    values outside it are an error. None takes the training images' own
    minimum and maximum. Generated pixels stay within the range.""",
    "filter_confidence": """\
filter_confidence : float in (0, 1) or None, default={default}
    With class labels: screen the generated images with a classifier that
    learns the classes from the real images at fit time (a small CNN,
    300 steps on shifted copies). Sampling keeps, image by image, the first
    of up to 16 candidates of the class asked for that it assigns to that
    class with at least this probability (the most confident candidate,
    with a warning, if none is); class counts stay exact and the images
    reproducible. None turns it off (and the classifier is not trained).
    Read when sampling as well: set it to None after a fit to sample
    without the filter.""",
    "device": """\
device : str or torch.device, default={default}
    ``"cpu"``, ``"auto"`` (CUDA when available) or a torch device. A model
    trained on a GPU samples (and pickles) on a machine without one.""",
    "precision": """\
precision : {{"auto", "float32", "bfloat16", "float16"}}, default={default}
    The arithmetic of the forward passes, in training and in sampling.
    ``"bfloat16"`` and ``"float16"`` run them under :func:`torch.autocast`
    (mixed precision: matrix products in 16 bits; the networks' outputs,
    losses and the weights the optimiser updates in float32), which on GPUs
    with tensor cores saves memory and time. ``"float16"`` adds a dynamic
    loss scale; it is for CUDA only and not with differential privacy.
    ``"auto"`` is ``"float32"`` on every device, so that it computes the
    same rows as ``"float32"``: on the CPU, bfloat16 kept the fidelity
    (within 0.011 on credit_data, wage1 and CPS1988) but saved no time
    that stood out of the noise (the networks are small: a step is bound by
    kernel launches and data movement more than by arithmetic), and on GPUs
    it has not been measured yet (``benchmarks/gpu_check.py``); 16 bits are
    therefore opt-in.""",
    "random_state": """\
random_state : int, RandomState instance or None, default={default}
    Seeds every random draw (through local generators, never the global
    ones). The same value, data and machine give identical samples.""",
    "verbose": """\
verbose : int, default={default}
    Show a progress bar with the losses during training.""",
    # ------------------------------------------------------------- sampling
    "sample_y": """\
y : label, array-like of shape (n_samples,) or None, default=None
    Only for a generator fitted with class labels. None draws labels from
    the training label distribution (given the ``conditions``, if any); a
    single label gives every row that label; an array gives row ``i`` the
    label ``y[i]``. Labels are conditioned on, never rejection-sampled, so
    the counts are exact.""",
    "sample_stream": """\
random_state : int or None, default=None
    The stream of rows to draw from. With an int, the same call gives the
    same rows; rows come in fixed-size blocks whose randomness depends only
    on the model, ``random_state`` and the block's index, so that ranges of
    the stream (``start``) can be drawn apart, even on other machines, and
    concatenated. None draws a fresh stream on every call (the model's own
    sequence, which a refit with the same parameters replays).
start : int, default=0
    With ``random_state``: the position in the stream of the first row;
    ``sample(n, random_state=s, start=k)`` returns rows ``k`` to
    ``k + n - 1`` of the stream ``s``.""",
    "sample_returns": """\
X : DataFrame or ndarray of shape (n_samples, n_features)
    In the format ``fit`` was given: the same column names, order and dtypes
    (images: the same layout, dtype and pixel range).
y : Series, ndarray or list of shape (n_samples,)
    Only when fitted with a target: the labels of the rows (or the generated
    continuous target), in the format ``fit`` was given.""",
    "dp_epsilon": """\
dp_epsilon : float > 0 or None, default={default}
    None trains without differential privacy. A number makes the whole fit
    ``(dp_epsilon, dp_delta)``-differentially private: the encoder's
    statistics, the class prior and the conditioning frequencies come from
    noisy counts (or the declared ``dp_bounds`` and ``dp_categories``), the
    network that reads real {rows} is trained by DP-SGD (see above), and
    Opacus' RDP accountant composes them within the budget. Needs the
    ``[dp]`` extra; see the user guide's privacy page.""",
    "dp_delta": """\
dp_delta : float in (0, 1) or None, default={default}
    The delta of the guarantee; None is ``min(1e-5, 1 / (10 n))``. A delta of
    ``1 / n`` or more warns: it lets a row leak in the clear.""",
    "max_grad_norm": """\
max_grad_norm : float > 0, default={default}
    Under differential privacy, every row's gradient is clipped to this L2
    norm before the noise is added.""",
    "dp_bounds": """\
dp_bounds : dict or None, default={default}
    ``{{column: (low, high)}}``: public ranges of numeric (or datetime)
    columns, used under differential privacy instead of private ones (and as
    the decoding range); values outside are clipped, with a warning.""",
    "dp_categories": """\
dp_categories : dict or None, default={default}
    ``{{column: [values]}}``: public values of categorical columns, used under
    differential privacy instead of releasing the values found in the data
    (of which only frequent ones survive the noise).""",
    # ------------------------------------------------------------ attributes
    "privacy_attributes": """\
privacy_spent_ : tuple of (float, float)
    With ``dp_epsilon``: the ``(epsilon, delta)`` the fit spent, all
    mechanisms composed; at most the budget.
privacy_report_ : dict
    With ``dp_epsilon``: what spent which part (``mechanisms``: every release
    and the training, with noise multiplier, sample rate, steps, delta share
    and epsilon alone) and the accountant.""",
    "training_settings_": """\
training_settings_ : dict
    What the fit trained with: ``batch_size`` (at most the number of
    {rows}), ``epochs``, ``learning_rate`` and, for a model whose network
    sizes default to None, those sizes; the parameters left at None
    resolved, the others as set.""",
    "history_": """\
history_ : list of dict
    One dict per epoch: ``epoch`` and the mean of every loss over it
    (and ``held_out``, the held-out loss, when training stops early).""",
    "target_attributes": """\
classes_ : ndarray
    Class labels, when fitted with class labels.
class_prior_ : ndarray
    Training frequency of each class.
target_type_ : {{"classes", "continuous", "none"}}
    What ``y`` was in fit.
sampling_strategy_ : dict
    {Rows} added per class by the last :meth:`fit_resample`.""",
    "image_attributes": """\
image_shape_ : tuple of int
    ``(channels, height, width)`` of the training images.
n_features_in_ : int
    Values per image (channels x height x width).
feature_names_in_ : ndarray of str
    Column names, when fitted on a DataFrame of flat images with string
    column names.
filter_classifier_ : torch.nn.Module
    The filter's classifier, when fitted with class labels and
    ``filter_confidence``.
filter_history_ : list of dict
    Its training losses, per epoch.""",
    "tabular_attributes": """\
encoder_ : TableEncoder
    The fitted table encoder (of the free columns).
rules_ : list of Rule
    The rules found and declared, in the order they are derived; readable
    (``print(rule)``) and reusable as ``rules=``. With class labels, a rule
    may read the label, as the column ``"(label)"``.
conditioning_ : Conditioning
    The condition vectors' layout and the training frequencies of the
    discrete values within each class.
n_features_in_ : int
    Number of columns of ``X``.
feature_names_in_ : ndarray of str
    Column names of ``X``, when a DataFrame with string column names.""",
}

_ENLARGE_AUTO = """
    ``"auto"`` (with class labels) chooses among no synthetic rows,
    balancing and ``enlarge=2`` by the inner cross-validation of
    :class:`~augment.AugmentedClassifier` with a stand-in classifier
    (logistic regression on a :class:`~augment.tabular.TableEncoder`
    encoding), so that rows are added
    only where they help it: ``enlarge_`` holds the choice (0 for none,
    None for balancing only) and ``enlarge_search_`` the search, which costs
    five more fits of the generator. The amount that helps depends on the
    classifier: to choose it with yours, use
    :class:`~augment.AugmentedClassifier`."""

# every generator resolves its training settings at fit time
for _kind in ("tabular_attributes", "image_attributes"):
    SHARED[_kind] += "\n" + SHARED["training_settings_"]

_PLACEHOLDER = re.compile(r"^( *)%\((\w+)\)s$", flags=re.MULTILINE)


def fill_doc(obj):
    """Class or function decorator: replace the ``%(name)s`` lines of the
    docstring by the shared texts, indented as the placeholder and formatted
    for ``obj`` (a class's ``__init__`` gives the defaults)."""
    function = obj.__init__ if isinstance(obj, type) else obj
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
    }
    rows = getattr(obj, "_unit", "rows")
    settings = getattr(obj, "_settings", {})
    private = getattr(obj, "_private_settings", {})
    bounds = getattr(obj, "_default_epoch_bounds", (None, None))
    context = {
        "rows": rows,
        "Rows": rows.capitalize(),
        "steps": getattr(obj, "_default_steps", 0),
        "small_steps": _small_steps_text(getattr(obj, "_small_image_steps", None)),
        "auto": ', "auto"' if getattr(obj, "_enlarge_auto", False) else "",
        "auto_text": _ENLARGE_AUTO if getattr(obj, "_enlarge_auto", False) else "",
        "bounds": ""
        if bounds[1] is None
        else f" (between {bounds[0]} and {bounds[1]} epochs)",
        "or_none": " or None" if "batch_size" in settings else "",
        "private_epochs": ""
        if "epochs" not in private
        else _lines(
            f"Under differential privacy, None is {private['epochs']} epochs "
            "(see ``training_settings_``)."
        ),
        **{
            f"auto_{name}": _auto_text(name, settings, private)
            for name in ("batch_size", "learning_rate")
        },
    }

    def replace(match):
        indent, name = match.groups()
        if name not in SHARED:
            raise KeyError(f"{obj.__name__}'s docstring names no shared text {name!r}.")
        # the parameter a text describes is its first word ("epochs" for
        # "epochs_early_stopping")
        parameter = SHARED[name].split(" ", 1)[0]
        default = defaults.get(parameter, inspect.Parameter.empty)
        text = SHARED[name].format(default=_show(default), **context)
        return "\n".join(indent + line if line else "" for line in text.split("\n"))

    obj.__doc__ = _PLACEHOLDER.sub(replace, obj.__doc__)
    return obj


def _auto_text(name, settings, private):
    """What None means for a parameter a model resolves at fit time."""
    if name not in settings:
        return ""
    text = f"None: {_value(settings[name])}"
    if name in private and private[name] != settings[name]:
        text += f", or {_value(private[name])} under differential privacy"
    return _lines(text + " (see ``training_settings_``).")


def _small_steps_text(small):
    """What None means for small images, where an image model's budget
    differs (``_small_image_steps``)."""
    if small is None:
        return ""
    pixels, steps = small
    side = int(pixels**0.5)
    return _lines(
        f"Images of at most {pixels} pixels a channel ({side}x{side}, say) "
        f"train for about {steps:,} steps."
    )


def _lines(text):
    """``text`` as further lines of an entry (indented by four spaces)."""
    indent = " " * 4
    return "\n" + textwrap.fill(
        text, 72, initial_indent=indent, subsequent_indent=indent
    )


def _value(value):
    """A setting's value as the docs say it (a function of the number of
    rows by its repr, e.g. "every row")."""
    return repr(value) if callable(value) else f"``{value!r}``"


def _show(default):
    return f'"{default}"' if isinstance(default, str) else repr(default)

"""Validation shared by every estimator: parameter constraints that scikit-learn
lacks, counts, and the bookkeeping of feature names."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Options


class SequenceOf(Options):
    """A parameter constraint: a tuple or list of numbers (or strings).

    scikit-learn's constraint machinery takes only its own constraint kinds;
    this one is a kind of :class:`~sklearn.utils._param_validation.Options`
    (a set of allowed values, here described by a rule instead of listed), so
    that ``_parameter_constraints`` and ``validate_params`` accept it.

    Parameters
    ----------
    kind : type
        ``numbers.Integral``, ``numbers.Real`` or ``str``; booleans never count
        as numbers.
    lengths : tuple of int or None
        The lengths allowed; None allows any length, including 0.
    allowed : callable or None
        ``allowed(value) -> bool`` for every element.
    description : str
        What the elements must be, as the error message says it.
    increasing : bool
        The elements must increase strictly (``(low, high)`` pairs).
    """

    def __init__(
        self, kind, *, lengths=None, allowed=None, description="", increasing=False
    ):
        super().__init__((tuple, list), set())
        self.kind, self.lengths, self.allowed = kind, lengths, allowed
        self.description, self.increasing = description, increasing

    def is_satisfied_by(self, value):
        if not isinstance(value, (tuple, list)):
            return False
        if self.lengths is not None and len(value) not in self.lengths:
            return False
        for element in value:
            if isinstance(element, (bool, np.bool_)) or not isinstance(
                element, self.kind
            ):
                return False
            if self.allowed is not None and not self.allowed(element):
                return False
        return not self.increasing or all(
            a < b for a, b in zip(value[:-1], value[1:], strict=True)
        )

    def __str__(self):
        size = ""
        if self.lengths is not None:
            size = " of length " + " or ".join(str(n) for n in self.lengths)
        kinds = {numbers.Integral: "ints", numbers.Real: "numbers", str: "strings"}
        kind = kinds.get(self.kind, self.kind.__name__)
        what = f" ({self.description})" if self.description else ""
        return f"a tuple or list{size} of {kind}{what}"


def positive_ints(**options):
    """Widths of layers and the like: a tuple of ints >= 1."""
    return SequenceOf(
        numbers.Integral, allowed=lambda v: v >= 1, description=">= 1", **options
    )


def check_count(value, name):
    """A number of rows asked for: an int >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}.")
    return int(value)


def record_feature_names(estimator, n_features, columns=None):
    """Set ``n_features_in_`` and, when every column name is a string,
    ``feature_names_in_`` (removing a stale one), as scikit-learn does."""
    estimator.n_features_in_ = int(n_features)
    if columns is not None and all(isinstance(c, str) for c in columns):
        estimator.feature_names_in_ = np.asarray(columns, dtype=object)
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_

"""What the SDV backend does without SDV: it imports, clones and validates its
parameters, and fitting names the extra to install (tests/test_sdv.py runs
the rest where SDV is installed)."""

import sys

import numpy as np
import pytest
from sklearn.base import clone

from augment.backends import SDVGenerator

X = np.arange(20.0).reshape(10, 2)
y = np.array([0] * 6 + [1] * 4)


def test_without_sdv_fit_names_the_extra(monkeypatch):
    # as in an environment without SDV, which the core one is
    monkeypatch.setitem(sys.modules, "sdv", None)
    with pytest.raises(ImportError, match=r'pip install "augment-learn\[sdv\]"'):
        SDVGenerator().fit(X, y)


def test_unknown_synthesizer_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        SDVGenerator("gan").fit(X, y)
    for name in ["gaussian_copula", "ctgan", "tvae", "copulagan"]:
        assert repr(name) in str(error.value)


def test_params_is_a_clonable_dict():
    gen = SDVGenerator("ctgan", params={"epochs": 5}, random_state=0)
    assert clone(gen).get_params() == gen.get_params()
    with pytest.raises(ValueError, match="'params' parameter"):
        SDVGenerator(params=["epochs", 5]).fit(X, y)


def test_constraints_and_docstring_cover_every_parameter():
    # as tests/test_common.py does for the estimators of augment itself
    params = SDVGenerator().get_params(deep=False)
    assert set(SDVGenerator._parameter_constraints) == set(params)
    assert "%(" not in SDVGenerator.__doc__ + SDVGenerator.sample.__doc__
    for name in params:
        assert f"\n    {name} : " in SDVGenerator.__doc__, name

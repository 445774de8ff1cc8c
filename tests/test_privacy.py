"""Differential privacy in the core environment: without Opacus, asking for
it fails with an ImportError naming the extra."""

import importlib.util

import pytest
from conftest import mixed_table, tiny

from augment import TabularGAN, TabularTransformer, TabularVAE


@pytest.mark.skipif(
    importlib.util.find_spec("opacus") is not None, reason="Opacus is installed"
)
@pytest.mark.parametrize(
    "cls", [TabularVAE, TabularGAN, TabularTransformer], ids=lambda c: c.__name__
)
def test_dp_without_opacus_names_the_extra(cls):
    with pytest.raises(ImportError, match=r"pip install 'augment-learn\[dp\]'"):
        tiny(cls, dp_epsilon=1.0).fit(mixed_table(40))


@pytest.mark.parametrize(
    "cls", [TabularVAE, TabularGAN, TabularTransformer], ids=lambda c: c.__name__
)
def test_dp_is_off_by_default(cls):
    gen = tiny(cls).fit(mixed_table(40))
    assert gen.dp_epsilon is None
    assert not hasattr(gen, "privacy_spent_") and not hasattr(gen, "privacy_report_")

"""scikit-learn's and imbalanced-learn's estimator checks on every public estimator,
with tiny settings, as imbalanced-learn's own tests/test_common.py does."""

import pytest
from imblearn.utils.estimator_checks import (
    parametrize_with_checks as parametrize_with_sampler_checks,
)
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

import augment
from augment import (
    AugmentedClassifier,
    ImageDiffusion,
    ImageGAN,
    ImageVAE,
    TabularDiffusion,
    TabularGAN,
    TabularTransformer,
    TabularVAE,
)
from augment.tabular import TableEncoder

# The checks feed generic 2-d data: image generators read each row as a
# one-pixel-high image (image_shape=(1, -1)) whose values span any range
# (pixel_range=None).
FLAT_IMAGES = dict(image_shape=(1, -1), pixel_range=None)


def tiny_estimators():
    return [
        TabularVAE(
            epochs=2, hidden_dims=(16,), latent_dim=4, batch_size=32, random_state=0
        ),
        TabularGAN(epochs=2, generator_dims=(16,), critic_dims=(16,), random_state=0),
        TabularTransformer(epochs=2, width=16, random_state=0),
        TabularDiffusion(
            epochs=2, hidden_dims=(16,), batch_size=32, sampling_steps=3, random_state=0
        ),
        ImageGAN(
            epochs=2,
            generator_width=8,
            critic_width=4,
            noise_dim=4,
            random_state=0,
            **FLAT_IMAGES,
        ),
        ImageVAE(epochs=2, width=4, latent_dim=2, random_state=0, **FLAT_IMAGES),
        ImageDiffusion(
            epochs=2, width=4, sampling_steps=2, random_state=0, **FLAT_IMAGES
        ),
        # fit_resample's variations of the real images
        ImageDiffusion(
            epochs=2,
            width=4,
            sampling_steps=2,
            variation_strength=0.5,
            random_state=0,
            **FLAT_IMAGES,
        ),
    ]


def meta_estimators():
    """The estimators that take others: scikit-learn's checks only (they are
    classifiers, not samplers)."""
    generator = TabularVAE(
        epochs=2, hidden_dims=(8,), latent_dim=2, batch_size=32, random_state=0
    )
    return [
        AugmentedClassifier(
            LogisticRegression(), generator, amounts=[0, "balance"], cv=2
        )
    ]


@parametrize_with_checks(
    [*tiny_estimators(), TableEncoder(random_state=0), *meta_estimators()]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@parametrize_with_sampler_checks(tiny_estimators())
def test_imblearn_compatible(estimator, check):
    check(estimator)


def public_estimators():
    """Every estimator class the package exports."""
    names = [getattr(augment, name) for name in augment.__all__]
    return [c for c in names if isinstance(c, type) and issubclass(c, BaseEstimator)]


def test_every_public_estimator_is_checked_above():
    checked = {type(e) for e in [*tiny_estimators(), *meta_estimators()]}
    assert set(public_estimators()) <= checked | {TableEncoder}


def instance(cls):
    """An instance with its defaults (the meta-estimators' from above)."""
    metas = {type(e): e for e in meta_estimators()}
    return metas[cls] if cls in metas else cls()


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_constraints_cover_exactly_the_parameters(cls):
    # as scikit-learn's own common tests: every parameter is validated in fit,
    # and nothing is validated that is not a parameter
    params = instance(cls).get_params(deep=False)
    assert set(cls._parameter_constraints) == set(params)


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda c: c.__name__)
def test_docstrings_document_every_parameter(cls):
    # the shared texts are filled in: no placeholder is left, none is missing
    assert "%(" not in cls.__doc__
    for name in instance(cls).get_params(deep=False):
        assert f"\n    {name} : " in cls.__doc__, name

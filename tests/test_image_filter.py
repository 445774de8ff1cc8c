"""filter_confidence: generated images screened by a classifier of the real ones."""

import copy
import warnings

import numpy as np
import pytest
import torch

import augment
from augment import ImageGAN, ImageVAE
from augment.image.generator import ImageGenerator

CONFIDENCE = 0.6
# a VAE that makes recognisable digits of three classes in about a second
# (300 steps of a tiny network); the filter's classifier learns in 60 steps
SETTINGS = dict(epochs=300, width=8, latent_dim=4, random_state=0)
LABELS = np.repeat([0, 1, 2], 20)


@pytest.fixture(autouse=True)
def short_filter(monkeypatch):
    monkeypatch.setattr(ImageGenerator, "_filter_steps", 60)


@pytest.fixture(scope="module")
def fitted(digits):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageGenerator, "_filter_steps", 60)
        return ImageVAE(**SETTINGS, filter_confidence=CONFIDENCE).fit(*digits)


def confidence(gen, images, labels):
    """The filter classifier's probability of each image's class."""
    encoded = gen._input_format.encode(np.asarray(images)[:, None])
    with torch.no_grad():
        probs = gen.filter_classifier_(torch.as_tensor(encoded)).softmax(1)
    return probs[torch.arange(len(labels)), torch.as_tensor(labels)].numpy()


def unfiltered(gen):
    gen = copy.deepcopy(gen)
    return gen.set_params(filter_confidence=None)


def test_only_confident_images_are_kept(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no image falls short here
        X, y = fitted.sample(60, y=LABELS, random_state=0)
    X_all, y_all = unfiltered(fitted).sample(60, y=LABELS, random_state=0)
    np.testing.assert_array_equal(y, LABELS)
    np.testing.assert_array_equal(y_all, LABELS)
    kept = confidence(fitted, X, y)
    assert kept.min() >= CONFIDENCE - 1e-4
    # without the filter, the same stream holds images the classifier doubts
    assert (confidence(fitted, X_all, y_all) < CONFIDENCE).any()
    # images confident at the first candidate are left as they were
    first = confidence(fitted, X_all, y_all) >= CONFIDENCE
    np.testing.assert_array_equal(X[first], X_all[first])
    assert not np.array_equal(X[~first], X_all[~first])


def test_exact_counts_and_fit_resample(fitted, digits):
    X, y = fitted.sample(37, random_state=1)
    assert len(X) == len(y) == 37
    X, y = fitted.sample(25, y=2)
    assert X.shape == (25, 8, 8) and set(y.tolist()) == {2}
    gen = ImageVAE(**{**SETTINGS, "epochs": 20}, filter_confidence=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 20 steps: some fall short
        X_res, y_res = gen.fit_resample(*digits)
    np.testing.assert_array_equal(np.bincount(y_res), [30, 30, 30])


def test_reproducible_in_ranges_and_the_model_untouched(fitted, digits):
    a = fitted.sample(300, y=np.resize(LABELS, 300), random_state=4)[0]
    b = fitted.sample(300, y=np.resize(LABELS, 300), random_state=4)[0]
    np.testing.assert_array_equal(a, b)
    # a range of the stream is the same as in the whole (rows depend only on
    # their block, position and label), across a block boundary too
    part = fitted.sample(100, y=np.resize(LABELS, 300)[200:], random_state=4, start=200)
    np.testing.assert_array_equal(part[0], a[200:])
    # the classifier has seeds of its own: the model is the one fitted without it
    plain = ImageVAE(**SETTINGS).fit(*digits)
    assert not hasattr(plain, "filter_classifier_")
    np.testing.assert_array_equal(
        plain.sample(20, y=1, random_state=2)[0],
        unfiltered(fitted).sample(20, y=1, random_state=2)[0],
    )


def test_global_torch_random_state_is_left_alone(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    gen = ImageGAN(epochs=2, generator_width=8, critic_width=4, noise_dim=4)
    gen.set_params(filter_confidence=0.5, random_state=0).fit(*digits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gen.sample(5)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "vae.augment")
    header, tensors = augment.io.read(path)
    assert "filter_classifier_" in header["modules"]
    assert any(k.startswith("filter_classifier_/") for k in tensors)
    loaded = augment.load(path)
    assert loaded.filter_confidence == CONFIDENCE
    np.testing.assert_array_equal(
        loaded.sample(30, y=LABELS[:30], random_state=7)[0],
        fitted.sample(30, y=LABELS[:30], random_state=7)[0],
    )
    weights = fitted.filter_classifier_.state_dict()
    for key, value in loaded.filter_classifier_.state_dict().items():
        torch.testing.assert_close(value, weights[key])


def test_the_cap_on_candidates_warns_and_keeps_counts(fitted, monkeypatch):
    monkeypatch.setattr(ImageGenerator, "_filter_rounds", 2)
    gen = copy.deepcopy(fitted).set_params(filter_confidence=1 - 1e-9)
    with pytest.warns(UserWarning, match="60 of 60 images .* in 2 candidates"):
        X, y = gen.sample(60, y=LABELS, random_state=0)
    np.testing.assert_array_equal(y, LABELS)
    # each the more confident of its two candidates
    X_all = unfiltered(fitted).sample(60, y=LABELS, random_state=0)[0]
    assert (confidence(fitted, X, y) >= confidence(fitted, X_all, y) - 1e-6).all()


def test_verbose_shows_the_filter_training(digits, capsys):
    ImageVAE(epochs=2, width=4, latent_dim=2, filter_confidence=0.5, verbose=1).fit(
        *digits
    )
    assert "ImageVAE filter" in capsys.readouterr().err


def test_unlabelled_images_are_not_filtered(digits):
    gen = ImageVAE(epochs=2, width=4, latent_dim=2, filter_confidence=0.5)
    gen.fit(digits[0])
    assert not hasattr(gen, "filter_classifier_")
    assert gen.sample(4).shape == (4, 8, 8)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.2, "high"])
def test_bad_filter_confidence(digits, value):
    gen = ImageGAN(epochs=1, generator_width=8, critic_width=4, filter_confidence=value)
    with pytest.raises(ValueError, match="filter_confidence"):
        gen.fit(*digits)


def test_filter_set_after_a_fit_without_it(digits):
    gen = ImageVAE(epochs=2, width=4, latent_dim=2, random_state=0).fit(*digits)
    gen.set_params(filter_confidence=0.5)
    with pytest.raises(ValueError, match="fitted without it.*Fit again"):
        gen.sample(3, y=0)
    # a refit without the filter drops the classifier of an earlier fit
    gen.fit(*digits)
    assert hasattr(gen, "filter_classifier_")
    gen.set_params(filter_confidence=None).fit(*digits)
    assert not hasattr(gen, "filter_classifier_")
    assert not hasattr(gen, "filter_history_")

"""ImageDiffusion: what differs from the other image generators (guidance,
the sampler, the denoiser's cost); the shared behaviour is tested with them
in test_images.py and test_io.py."""

import numpy as np
import pytest
import torch
from conftest import multiply_adds
from sklearn.linear_model import LogisticRegression

import augment
from augment import ImageDiffusion
from augment.image.diffusion import _UNet

TINY = dict(epochs=2, width=8, sampling_steps=3)


@pytest.fixture(scope="module")
def fitted(digits):
    return ImageDiffusion(**TINY, random_state=0).fit(*digits)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"guidance_scale": -0.5}, "guidance_scale"),
        ({"sampling_steps": 0}, "sampling_steps"),
        ({"condition_dropout": 1.0}, "condition_dropout"),
        ({"width": 0}, "width"),
    ],
)
def test_bad_parameters(digits, params, match):
    with pytest.raises(ValueError, match=match):
        ImageDiffusion(**{**TINY, **params}).fit(*digits)


def test_guidance_changes_the_images_and_zero_ignores_the_class(fitted):
    def draw(guidance, label):
        fitted.set_params(guidance_scale=guidance)
        return fitted.sample(6, y=label, random_state=1)[0]

    default = fitted.guidance_scale
    try:
        plain, guided = draw(1.0, 1), draw(3.0, 1)
        assert not np.allclose(plain, guided)
        # the unconditional model: the same noise gives the same image, whatever
        # the class asked for (the labels are still exact)
        np.testing.assert_array_equal(draw(0.0, 0), draw(0.0, 2))
        assert not np.allclose(draw(1.0, 0), draw(1.0, 2))
    finally:
        fitted.set_params(guidance_scale=default)


def test_sampler_is_deterministic_and_drawn_in_blocks(fitted):
    a = fitted.sample(20, random_state=5)
    b = fitted.sample(20, random_state=5)
    np.testing.assert_array_equal(a[0], b[0])
    part = fitted.sample(7, random_state=5, start=13)
    np.testing.assert_array_equal(part[0], a[0][13:])
    np.testing.assert_array_equal(part[1], a[1][13:])
    fitted.set_params(sampling_steps=1)
    try:  # the steps matter, and one is enough to run
        one = fitted.sample(20, random_state=5)[0]
    finally:
        fitted.set_params(sampling_steps=TINY["sampling_steps"])
    assert not np.allclose(one, a[0])


def test_save_and_load_sample_the_same(fitted, tmp_path):
    loaded = augment.load(fitted.save(tmp_path / "diffusion.augment"))
    assert isinstance(loaded, ImageDiffusion)
    a, b = fitted.sample(9, random_state=2), loaded.sample(9, random_state=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_condition_dropout_is_drawn_from_the_fit(digits):
    # the dropped labels come from the fit's generator: the same seed gives
    # the same losses, another dropout rate other ones
    losses = [
        ImageDiffusion(**TINY, condition_dropout=rate, random_state=0)
        .fit(*digits)
        .history_[-1]["loss"]
        for rate in (0.5, 0.5, 0.0)
    ]
    assert losses[0] == losses[1] != losses[2]


def test_clipped_sampler_stays_in_range_and_off_the_bounds():
    # a network that predicts nonsense far out of range: the clipped clean
    # image keeps every step, and the result, within [-1, 1]
    network = _UNet((1, 8, 8), 2, 8).eval()
    with torch.no_grad():
        network.out[-1].bias.fill_(50.0)
        noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        images = network.sample(noise, torch.tensor([0, 1, 0, 1]), 5, 2.0)
    assert images.shape == (4, 1, 8, 8)
    assert images.abs().max() <= 1


def test_classes_are_distinguishable_after_a_short_fit(digits):
    X, y = digits
    gen = ImageDiffusion(
        epochs=100,
        width=16,
        batch_size=30,
        learning_rate=3e-3,
        sampling_steps=8,
        random_state=0,
    ).fit(X, y)
    X_new, y_new = gen.sample(90, y=np.repeat([0, 1, 2], 30), random_state=0)
    assert gen.history_[-1]["loss"] < gen.history_[0]["loss"]
    judge = LogisticRegression(max_iter=500).fit(X.reshape(len(X), -1), y)
    recognised = judge.score(X_new.reshape(len(X_new), -1), y_new)
    assert recognised >= 0.8
    # not collapsed onto a few images, and not all pixels at the bounds
    assert len(np.unique(X_new.round(3), axis=0)) == 90
    inside = np.mean((X_new > 0.05) & (X_new < 0.95))
    real_inside = np.mean((X > 0.05) & (X < 0.95))
    assert inside > 0.5 * real_inside


def test_denoiser_cost_grows_no_faster_than_the_pixels():
    def cost(side):
        network = _UNet((3, side, side), 10, 64)
        images = torch.zeros(1, 3, side, side)
        return multiply_adds(network, images, torch.zeros(1), torch.zeros(1).long())

    costs = {side: cost(side) for side in (8, 16, 32, 64)}
    for side in (16, 32, 64):
        assert costs[side] <= (side / 8) ** 2 * costs[8]
    assert costs[64] < 0.5 * 64 * costs[8]
    # any size, square or not, comes back in its own shape
    network = _UNet((2, 5, 11), 3, 16)
    out = network(torch.zeros(2, 2, 5, 11), torch.rand(2), torch.tensor([0, 3]))
    assert out.shape == (2, 2, 5, 11)


@pytest.mark.parametrize(
    "shape, steps", [((1, 8, 8), 1000), ((3, 8, 8), 1000), ((1, 16, 16), 600)]
)
def test_default_steps_by_image_size(shape, steps):
    gen = ImageDiffusion()
    gen.image_shape_ = shape
    assert gen._step_budget(100, 64) == steps


# ------------------------------------------------------------- variations
@pytest.fixture(scope="module")
def varying(digits):
    return ImageDiffusion(**TINY, variation_strength=0.5, random_state=0).fit(*digits)


@pytest.mark.parametrize("strength", [0.0, -0.2, 1.5])
def test_bad_variation_strength(digits, strength):
    with pytest.raises(ValueError, match="variation_strength"):
        ImageDiffusion(**TINY, variation_strength=strength).fit(*digits)


def test_variations_stay_near_their_images_at_low_strength(varying, digits):
    X, y = digits
    distance = {}
    for strength in (0.02, 0.5, 1.0):
        varying.set_params(variation_strength=strength)
        X_new, y_new = varying.vary(X, y, random_state=0)
        np.testing.assert_array_equal(y_new, y)
        distance[strength] = np.abs(X_new - X).mean()
    varying.set_params(variation_strength=0.5)
    # a small strength keeps the image, a larger one redraws more of it
    assert distance[0.02] < 0.02
    assert distance[0.02] < distance[0.5] < distance[1.0]


def test_strength_one_is_the_sampler_from_noise(varying, digits):
    X, y = digits
    varying.set_params(variation_strength=1.0)
    try:
        # pure noise: the images do not depend on the sources
        a = varying.vary(X, y, random_state=4)[0]
        b = varying.vary(1 - X, y, random_state=4)[0]
        np.testing.assert_array_equal(a, b)
        # and are the sampler's from the same generator state
        labels = torch.as_tensor(varying._class_index(y))
        plain = varying._generate(labels, len(y), torch.Generator().manual_seed(3))
        varying._sources = torch.as_tensor(varying._input_format.encode(X[:, None]))
        try:
            noised = varying._generate(labels, len(y), torch.Generator().manual_seed(3))
        finally:
            del varying._sources
        torch.testing.assert_close(noised, plain, rtol=0, atol=0)
    finally:
        varying.set_params(variation_strength=0.5)


def test_vary_is_reproducible_and_sample_stays_from_noise(varying, digits):
    X, y = digits
    a = varying.vary(X[:5], y[:5], n_variations=3, random_state=1)
    b = varying.vary(X[:5], y[:5], n_variations=3, random_state=1)
    c = varying.vary(X[:5], y[:5], n_variations=3, random_state=2)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (15, 8, 8) and not np.allclose(a[0], c[0])
    np.testing.assert_array_equal(a[1], np.repeat(y[:5], 3))
    # the variations of an image differ from each other
    assert not np.allclose(a[0][0], a[0][1])
    # one image, or none asked for
    assert varying.vary(X[:1], y[:1])[0].shape == (1, 8, 8)
    assert varying.vary(X[:2], y[:2], n_variations=0)[0].shape == (0, 8, 8)
    # sample ignores the strength: the same images as without it
    with_strength = varying.sample(6, y=1, random_state=3)[0]
    varying.set_params(variation_strength=None)
    try:
        np.testing.assert_array_equal(
            with_strength, varying.sample(6, y=1, random_state=3)[0]
        )
    finally:
        varying.set_params(variation_strength=0.5)


def test_fit_resample_varies_every_real_image_in_turn(digits, tmp_path):
    X, y = digits
    order = np.random.default_rng(0).permutation(len(y))  # classes mixed
    X, y = X[order], y[order]
    doubled = {0: 60, 1: 40, 2: 20}  # every class twice its size
    gen = ImageDiffusion(
        **TINY, variation_strength=0.02, sampling_strategy=doubled, random_state=0
    )
    X_res, y_res = gen.fit_resample(X, y)
    np.testing.assert_array_equal(X_res[: len(X)], X)
    X_new, y_new = X_res[len(X) :], y_res[len(X) :]
    assert sorted(y_new.tolist()) == sorted(y.tolist())
    # at a small strength, every added image is nearest to its source: each
    # real image once, of the added image's class
    flat = X.reshape(len(X), -1)
    nearest = np.argmin(
        ((X_new.reshape(len(X_new), 1, -1) - flat[None]) ** 2).sum(-1), axis=1
    )
    assert sorted(nearest.tolist()) == list(range(len(X)))
    np.testing.assert_array_equal(y[nearest], y_new)
    again = ImageDiffusion(**gen.get_params()).fit_resample(X, y)
    np.testing.assert_array_equal(again[0], X_res)
    # the model keeps no images: nothing of the call is left, and the file
    # samples as the model
    assert not {"_real_images", "_real_y", "_sources"} & set(vars(gen))
    loaded = augment.load(gen.save(tmp_path / "varied.augment"))
    np.testing.assert_array_equal(
        loaded.vary(X[:4], y[:4], random_state=0)[0],
        gen.vary(X[:4], y[:4], random_state=0)[0],
    )


def test_fit_resample_without_strength_samples_from_noise(digits):
    X, y = digits
    params = dict(**TINY, enlarge=1.5, random_state=0)
    plain = ImageDiffusion(**params).fit_resample(X, y)[0]
    varied = ImageDiffusion(**params, variation_strength=0.3).fit_resample(X, y)[0]
    np.testing.assert_array_equal(plain[: len(X)], varied[: len(X)])
    assert not np.allclose(plain[len(X) :], varied[len(X) :])


def test_variations_without_labels(digits):
    X, _ = digits
    gen = ImageDiffusion(**TINY, variation_strength=0.02, enlarge=1.5, random_state=0)
    X_res = gen.fit_resample(X)
    assert X_res.shape == (90, 8, 8)
    # the first 30 images in turn
    assert np.abs(X_res[60:] - X[:30]).mean() < 0.02
    assert gen.vary(X[:3], n_variations=2).shape == (6, 8, 8)
    with pytest.raises(ValueError, match="y was given"):
        gen.vary(X[:3], [0, 0, 0])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda g, X, y: g.vary(X, None), ValueError, "y is required"),
        (lambda g, X, y: g.vary(X, y[:3]), ValueError, "one label per image"),
        (lambda g, X, y: g.vary(X, y + 5), ValueError, "not a training label"),
        (lambda g, X, y: g.vary(X[:, :4], y), ValueError, "fitted on"),
        (lambda g, X, y: g.vary(X, y, n_variations=-1), ValueError, "n_variations"),
        (lambda g, X, y: g.vary(X, y, n_variations=1.5), TypeError, "n_variations"),
    ],
)
def test_vary_bad_input(varying, digits, call, error, match):
    X, y = digits
    with pytest.raises(error, match=match):
        call(varying, X, y)


def test_vary_needs_a_strength_and_a_fit(digits):
    X, y = digits
    with pytest.raises(ValueError, match="variation_strength"):
        ImageDiffusion(**TINY, random_state=0).fit(X, y).vary(X, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ImageDiffusion(variation_strength=0.5).vary(X, y)

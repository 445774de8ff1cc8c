"""The image generators: layouts, dtypes, sizes, exact counts, pipelines, bad input."""

import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import multiply_adds
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.preprocessing import FunctionTransformer

from augment import ImageDiffusion, ImageGAN, ImageVAE

# settings that train in a fraction of a second
TINY = {
    ImageGAN: dict(epochs=2, generator_width=16, critic_width=8, noise_dim=8),
    ImageVAE: dict(epochs=2, width=8, latent_dim=4),
    ImageDiffusion: dict(epochs=2, width=8, sampling_steps=2),
}


def tiny(cls, **params):
    return cls(**{**TINY[cls], "random_state": 0, **params})


@pytest.fixture(params=list(TINY), ids=lambda c: c.__name__)
def image_class(request):
    return request.param


# ------------------------------------------------------- layouts and dtypes
def _rgb(n=12, height=6, width=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "make, params",
    [
        (lambda X: X, {}),  # (N, H, W) float
        (lambda X: X[:, None], {}),  # (N, 1, H, W)
        (lambda X: X[..., None], {}),  # (N, H, W, 1)
        (lambda X: (X * 255).round().astype(np.uint8), {}),
        (lambda X: X.astype(np.float32), {}),
        (lambda X: X.reshape(len(X), -1), {"image_shape": (8, 8)}),
        (lambda X: X.reshape(len(X), -1), {"image_shape": (1, 8, -1)}),
    ],
    ids=["hw", "chw", "hwc", "uint8", "float32", "flat", "flat-inferred"],
)
def test_output_has_the_input_layout_and_dtype(image_class, digits, make, params):
    X, y = digits
    X = make(X)
    gen = tiny(image_class, **params).fit(X, y)
    X_new, y_new = gen.sample(7, y=2)
    assert X_new.shape == (7, *X.shape[1:]) and X_new.dtype == X.dtype
    assert y_new.tolist() == [2] * 7
    low, high = (0, 255) if X.dtype == np.uint8 else (0, 1)
    assert X_new.min() >= low and X_new.max() <= high
    assert gen.image_shape_ == (1, 8, 8) and gen.n_features_in_ == 64


@pytest.mark.parametrize(
    "shape, channels_last",
    [((6, 10), None), ((3, 6, 10), None), ((6, 10, 3), None), ((2, 5, 5), False)],
    ids=["gray-non-square", "rgb-first", "rgb-last", "two-channels"],
)
def test_sizes_and_channels(image_class, shape, channels_last):
    X = np.random.default_rng(0).random((12, *shape))
    y = np.repeat([0, 1], 6)
    gen = tiny(image_class, channels_last=channels_last).fit(X, y)
    X_new, _ = gen.sample(3)
    assert X_new.shape == (3, *shape)


@pytest.mark.parametrize("side", [8, 28, 64])
def test_sizes_from_8_to_64_pixels(image_class, side):
    X = _rgb(n=4, height=side, width=side)
    gen = tiny(image_class, epochs=1).fit(X, [0, 0, 1, 1])
    X_new, y_new = gen.sample(2, y=[1, 0])
    assert X_new.shape == (2, side, side, 3) and X_new.dtype == np.uint8


def test_uint8_rgb_channels_last_round_trip(image_class):
    X = _rgb()
    y = np.array(["cat", "dog"] * 6)
    X_res, y_res = tiny(image_class, sampling_strategy={"dog": 9}).fit_resample(X, y)
    assert X_res.shape == (15, 6, 10, 3) and X_res.dtype == np.uint8
    np.testing.assert_array_equal(X_res[:12], X)  # the real images, untouched
    assert Counter(y_res) == {"cat": 6, "dog": 9}


def test_pixel_range(image_class, digits):
    X, y = digits
    gen = tiny(image_class, pixel_range=(0, 16)).fit(X * 16, y)
    assert gen.sample(5)[0].max() <= 16
    standardised = (X - X.mean()) / X.std()
    gen = tiny(image_class, pixel_range=None).fit(standardised, y)
    X_new = gen.sample(50)[0]
    assert standardised.min() <= X_new.min() and X_new.max() <= standardised.max()


def test_flat_dataframe_and_list(image_class, digits):
    X, y = digits
    frame = pd.DataFrame(X.reshape(len(X), -1), columns=[f"p{i}" for i in range(64)])
    gen = tiny(image_class, image_shape=(8, 8))
    X_res, y_res = gen.fit_resample(frame, pd.Series(y, name="digit"))
    assert isinstance(X_res, pd.DataFrame) and list(X_res.columns) == list(frame)
    assert y_res.name == "digit" and len(X_res) == 90
    assert list(gen.feature_names_in_) == list(frame.columns)
    X_res, y_res = tiny(image_class).fit_resample(list(X), list(y))
    assert isinstance(X_res, list) and np.shape(X_res) == (90, 8, 8)


# ------------------------------------------------------ counts and randomness
def test_exact_counts_and_default_labels(image_class, digits):
    X, y = digits
    gen = tiny(image_class).fit(X, y)
    wanted = np.array([2, 2, 0, 1, 2])
    np.testing.assert_array_equal(gen.sample(5, y=wanted)[1], wanted)
    _, y_new = gen.sample(3000)
    shares = np.bincount(y_new) / 3000
    np.testing.assert_allclose(shares, [0.5, 1 / 3, 1 / 6], atol=0.03)
    with pytest.raises(ValueError, match="7 is not a training label"):
        gen.sample(3, y=7)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, {0: 30, 1: 30, 2: 30}),
        ({"sampling_strategy": "minority"}, {0: 30, 1: 20, 2: 30}),
        ({"sampling_strategy": {2: 15}}, {0: 30, 1: 20, 2: 15}),
        ({"enlarge": 2.0}, {0: 40, 1: 40, 2: 40}),
    ],
    ids=["auto", "minority", "dict", "enlarge"],
)
def test_fit_resample_counts(image_class, digits, params, expected):
    X, y = digits
    X_res, y_res = tiny(image_class, **params).fit_resample(X, y)
    assert dict(Counter(y_res.tolist())) == expected
    np.testing.assert_array_equal(X_res[: len(X)], X)


def test_unlabelled_images_enlarge(image_class, digits):
    X, _ = digits
    gen = tiny(image_class, enlarge=1.5)
    assert gen.fit_resample(X).shape == (90, 8, 8)
    assert gen.sample(4).shape == (4, 8, 8)  # no labels: X only


def test_same_random_state_same_images(image_class, digits):
    X, y = digits
    a = tiny(image_class, random_state=3).fit(X, y).sample(10)[0]
    b = tiny(image_class, random_state=3).fit(X, y).sample(10)[0]
    c = tiny(image_class, random_state=4).fit(X, y).sample(10)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_global_torch_random_state_is_left_alone(image_class, digits):
    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(image_class).fit(X, y).sample(5)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_history_verbose_clone_and_pickle(image_class, digits, capsys):
    X, y = digits
    gen = tiny(image_class, epochs=3, verbose=1).fit(X, y)
    assert image_class.__name__ in capsys.readouterr().err
    assert len(gen.history_) == 3
    assert all(np.isfinite(v) for record in gen.history_ for v in record.values())
    assert clone(gen).get_params() == gen.get_params()
    restored = pickle.loads(pickle.dumps(gen))
    np.testing.assert_array_equal(restored.sample(4, y=1)[0], gen.sample(4, y=1)[0])


# ----------------------------------------------------------------- pipelines
def test_pipeline_with_flatten_cross_validate_and_grid_search(image_class, digits):
    X, y = digits
    flatten = FunctionTransformer(lambda images: images.reshape(len(images), -1))
    pipe = make_pipeline(tiny(image_class), flatten, LogisticRegression(max_iter=200))
    scores = cross_validate(pipe, X, y, cv=3)
    assert np.all(scores["test_score"] > 0.5)
    step = type(pipe.steps[0][1]).__name__.lower()
    search = GridSearchCV(pipe, {f"{step}__epochs": [1, 2]}, cv=2).fit(X, y)
    assert len(search.predict(X)) == len(X)


def test_flat_images_straight_into_a_classifier(image_class, digits):
    X, y = digits
    pipe = make_pipeline(
        tiny(image_class, image_shape=(8, 8)), LogisticRegression(max_iter=200)
    )
    pipe.fit(X.reshape(len(X), -1), y)
    assert pipe.score(X.reshape(len(X), -1), y) > 0.8


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, params, error, match",
    [
        (lambda X: X[:, 0, 0], {}, ValueError, "Expected 2D array"),
        (lambda X: X[:, None, None], {}, ValueError, "must be \\(N, H, W\\)"),
        (lambda X: X.reshape(len(X), -1), {}, ValueError, "need image_shape"),
        (lambda X: X.reshape(len(X), -1), {"image_shape": (7, 7)}, ValueError, "fit"),
        (lambda X: X, {"image_shape": (4, 16)}, ValueError, "for flat images"),
        (lambda X: np.where(X > 0.9, np.nan, X), {}, ValueError, "NaN"),
        (lambda X: X * 16, {}, ValueError, "outside pixel_range=\\(0, 1\\)"),
        (lambda X: X - 0.5, {}, ValueError, "outside pixel_range"),
        (lambda X: X > 0.5, {}, TypeError, "dtype bool"),
        (lambda X: X[:1], {}, ValueError, "1 sample"),
    ],
    ids=[
        "1-d",
        "5-d",
        "flat-no-shape",
        "flat-wrong-shape",
        "shape-for-non-flat",
        "nan",
        "above-range",
        "negative",
        "bool",
        "one-image",
    ],
)
def test_bad_images_get_a_clear_error(image_class, digits, make, params, error, match):
    X, y = digits
    X_before = X.copy()
    X_bad = make(X)
    with pytest.raises(error, match=match):
        tiny(image_class, **params).fit(X_bad, y[: len(X_bad)])
    np.testing.assert_array_equal(X, X_before)


def test_mixed_sizes_in_a_list(image_class):
    images = [np.zeros((8, 8)), np.ones((8, 8)), np.zeros((9, 9))]
    with pytest.raises(ValueError, match="mixes image sizes.*index 2"):
        tiny(image_class).fit(images, [0, 1, 1])


def test_ambiguous_channels_need_channels_last(image_class):
    X = np.random.default_rng(0).random((6, 3, 3, 3))
    with pytest.raises(ValueError, match="channels_last=True"):
        tiny(image_class).fit(X, [0, 1] * 3)
    gen = tiny(image_class, channels_last=True).fit(X, [0, 1] * 3)
    assert gen.sample(2)[0].shape == (2, 3, 3, 3)
    X = np.random.default_rng(0).random((6, 5, 6, 7))
    with pytest.raises(ValueError, match="neither of axes 1 and 3"):
        tiny(image_class).fit(X, [0, 1] * 3)


def test_classes_need_two_images(image_class, digits):
    X, y = digits
    y = y.copy()
    y[0] = 9
    with pytest.raises(ValueError, match="\\[9\\] have fewer than two images"):
        tiny(image_class).fit(X, y)


def test_continuous_target_is_refused(image_class, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="y is continuous"):
        tiny(image_class).fit(X, np.linspace(0, 1, len(X)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pixel_range": (1, 0)}, "pixel_range.*must be.*low < high"),
        ({"image_shape": (8, -1, -1)}, "image_shape"),
        ({"augmentations": ("blur",)}, "augmentations"),
    ],
)
def test_bad_parameters(digits, params, match):
    X, y = digits
    if "image_shape" in params:
        X = X.reshape(len(X), -1)
    with pytest.raises(ValueError, match=match):
        tiny(ImageGAN, **params).fit(X, y)


# ------------------------------------------------- the GAN's augmentations
def test_augmentations_keep_shape_and_pass_gradients():
    from augment.image.augmentation import augment, cutout, translation

    generator = torch.Generator().manual_seed(0)
    images = torch.linspace(-1, 1, 2 * 3 * 8 * 10).reshape(2, 3, 8, 10)
    images.requires_grad_(True)
    out = augment(images, ("color", "translation", "cutout"), generator)
    assert out.shape == images.shape
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    # a shift moves whole images by at most a pixel here, filling with -1
    shifted = translation(images.detach(), generator)
    values = set(images.detach().flatten().tolist()) | {-1.0}
    assert set(shifted.flatten().tolist()) <= values
    blanked = cutout(torch.ones(4, 1, 8, 8), generator)
    assert ((blanked == 0).sum(dim=(1, 2, 3)) == 16).all()  # a 4x4 rectangle


def test_gan_options_run(digits):
    X, y = digits
    gen = tiny(
        ImageGAN,
        augmentations=("color", "translation", "cutout"),
        truncation=0.5,
        classifier_weight=0.0,
        diversity_weight=0.0,
    ).fit(X, y)
    assert "classifier" not in gen.history_[0]
    assert gen.sample(3, y=1)[0].shape == (3, 8, 8)


# ------------------------------------------------------------- cost by size
@pytest.mark.parametrize(
    "shape, steps",
    [((1, 8, 8), 2000), ((3, 8, 8), 2000), ((1, 16, 16), 1000), ((3, 32, 32), 1000)],
)
def test_gan_default_steps_by_image_size(shape, steps):
    # 8x8 images need twice the steps of larger ones to be recognised as
    # their class (docs/images.rst); the budget is per image, not per pixel
    gen = ImageGAN()
    gen.image_shape_ = shape
    assert gen._step_budget(100, 64) == steps
    assert gen._step_budget(640, 64) == steps // 10


def test_default_budget_follows_the_fitted_image_size(monkeypatch):
    # the budget of epochs=None is set once the images' size is known
    monkeypatch.setattr(ImageGAN, "_default_steps", 2)
    monkeypatch.setattr(ImageGAN, "_small_image_steps", (64, 3))
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 4)
    for side, steps in [(8, 3), (9, 2)]:
        X = rng.uniform(size=(8, side, side))
        gen = tiny(ImageGAN, epochs=None).fit(X, y)
        assert gen.training_settings_["epochs"] == len(gen.history_) == steps


def test_network_cost_grows_no_faster_than_the_pixels():
    from augment.nn import ConvDecoder, ConvEncoder

    def cost(side):
        shape = (3, side, side)
        decoder = ConvDecoder(16, shape, 64).eval()
        encoder = ConvEncoder(shape, 64)
        return multiply_adds(decoder, torch.zeros(1, 16)) + multiply_adds(
            encoder, torch.zeros(1, *shape)
        )

    costs = {side: cost(side) for side in (8, 16, 32, 64)}
    for side in (16, 32, 64):  # 4, 16 and 64 times the pixels of 8x8
        assert costs[side] <= (side / 8) ** 2 * costs[8]
    assert costs[64] < 0.5 * 64 * costs[8]  # well below linear, in fact
    # and the channels: set at the coarsest grid, halved per finer stage
    encoder = ConvEncoder((1, 32, 32), 64)
    widths = [m.out_channels for m in encoder.body if isinstance(m, torch.nn.Conv2d)]
    assert widths == [8, 16, 32, 64] and encoder.out_grid == (4, 4)


def test_frozen_passes_gradients_through_but_not_into_the_weights():
    from augment.nn import ConvEncoder, frozen

    critic = ConvEncoder((1, 8, 8), 8)
    fixed = critic.body[0].bias.requires_grad_(False)  # frozen before: stays so
    images = torch.randn(4, 1, 8, 8, requires_grad=True)
    with frozen(critic, None):
        score = critic(images).sum()
    score.backward()  # after the block: the graph was recorded inside it
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())
    assert [p.requires_grad for p in critic.parameters()] == [
        p is not fixed for p in critic.parameters()
    ]
    critic(images).sum().backward()  # outside: the weights learn again
    assert critic.body[0].weight.grad is not None and fixed.grad is None


def test_gan_generator_terms_add_no_gradients_to_the_critic(digits, monkeypatch):
    # a step updates the critic (its score and its class head), then the
    # generator; the generator's backward pass through the critic must leave
    # the critic's gradients as its own update left them
    from augment.image import gan

    after_update = []

    def update(optimiser, loss):
        gan_update(optimiser, loss)
        params = [p for group in optimiser.param_groups for p in group["params"]]
        after_update.append([(p, p.grad.clone()) for p in params])

    gan_update = gan.update
    monkeypatch.setattr(gan, "update", update)
    tiny(ImageGAN, epochs=1).fit(*digits)
    critic, generator = after_update  # no third network: the head is the critic's
    assert any(p.shape == (3,) for p, _ in critic)  # the class head's bias
    for p, grad in critic:
        assert torch.equal(p.grad, grad)


@pytest.mark.parametrize("classifier_weight", [1.0, 0.0])
def test_gan_classifies_on_the_critics_convolutions(
    digits, monkeypatch, classifier_weight
):
    # the auxiliary classifier is a head on the critic's features (AC-GAN):
    # a step runs the convolutions three times (the critic on real and on
    # generated images, then through it for the generator), not five
    from augment.nn import ConvEncoder

    passes, forward = [], ConvEncoder.forward

    def counted(self, images):
        passes.append(len(images))
        return forward(self, images)

    monkeypatch.setattr(ConvEncoder, "forward", counted)
    gen = tiny(ImageGAN, epochs=2, classifier_weight=classifier_weight).fit(*digits)
    assert len(passes) == 3 * 2
    assert ("classifier" in gen.history_[0]) == bool(classifier_weight)

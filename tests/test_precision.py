"""Mixed precision (the ``precision`` parameter), on the CPU: bfloat16 autocast."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY, tiny
from scipy.stats import ks_2samp
from sklearn.datasets import load_digits, load_wine
from sklearn.utils._param_validation import InvalidParameterError

import augment
from augment import ImageGAN, ImageVAE
from augment.nn import run_epochs, update
from augment.nn.precision import Precision, loadable_precision


def test_bfloat16_fit_and_sample(generator_class, labelled):
    X, y = labelled
    gen = tiny(generator_class, precision="bfloat16").fit(X, y)
    assert gen.training_settings_["precision"] == "bfloat16"
    assert len(gen.history_) == TINY[generator_class]["epochs"]
    assert all(np.isfinite(v) for r in gen.history_ for v in r.values())
    # the master weights stay float32
    assert {p.dtype for p in gen.module_.parameters()} == {torch.float32}
    X_new, y_new = gen.sample(40, y="yes", random_state=0)
    assert list(X_new.dtypes) == list(X.dtypes) and (y_new == "yes").all()
    X_again, _ = gen.sample(40, y="yes", random_state=0)
    pd.testing.assert_frame_equal(X_new, X_again)  # reproducible in bfloat16 too


def test_auto_is_float32(generator_class, labelled):
    X, y = labelled
    auto = tiny(generator_class).fit(X, y)
    full = tiny(generator_class, precision="float32").fit(X, y)
    assert auto.training_settings_["precision"] == "float32"
    assert auto.history_ == full.history_
    pd.testing.assert_frame_equal(
        auto.sample(30, random_state=1)[0], full.sample(30, random_state=1)[0]
    )


@pytest.mark.parametrize("cls", [ImageVAE, ImageGAN])
def test_bfloat16_images(cls):
    X, y = load_digits(return_X_y=True)
    gen = cls(epochs=1, image_shape=(8, 8), precision="bfloat16", random_state=0)
    gen.fit(X[:60] / 16, y[:60])
    assert len(gen.history_) == 1
    assert all(np.isfinite(v) for v in gen.history_[0].values())
    images, labels = gen.sample(5, y=3)
    assert images.dtype == np.float64 and images.shape == (5, 64)
    assert images.min() >= 0 and images.max() <= 1 and (labels == 3).all()


def _fidelity(real, synthetic):
    """Mean over the columns of 1 - Kolmogorov-Smirnov statistic."""
    return np.mean([1 - ks_2samp(real[c], synthetic[c]).statistic for c in real])


def test_bfloat16_keeps_quality(generator_class):
    # the same model in both precisions, trained long enough to learn the
    # marginals of wine: fidelity within a few points of float32's
    X, y = load_wine(return_X_y=True, as_frame=True)
    epochs = {"epochs": 10 * TINY[generator_class]["epochs"]}
    scores = {}
    for precision in ("float32", "bfloat16"):
        gen = tiny(generator_class, precision=precision, **epochs).fit(X, y)
        X_new, _ = gen.sample(500, random_state=0)
        scores[precision] = _fidelity(X, X_new)
    assert scores["bfloat16"] > 0.85, scores
    assert abs(scores["bfloat16"] - scores["float32"]) < 0.06, scores


def test_float16_is_refused_on_the_cpu(labelled):
    X, y = labelled
    with pytest.raises(ValueError, match=r"precision='float16' is for CUDA"):
        tiny(augment.TabularVAE, precision="float16").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'precision' parameter"):
        tiny(augment.TabularVAE, precision="half").fit(X, y)


def test_float16_with_differential_privacy_is_refused(labelled):
    X, y = labelled
    gen = tiny(augment.TabularGAN, precision="float16", dp_epsilon=1.0)
    with pytest.raises(ValueError, match=r"precision='float16' cannot .* dp_epsilon"):
        gen.fit(X, y)


def test_bfloat16_under_differential_privacy():
    # per-row gradients of float32 weights: clipped and noised as in float32
    pytest.importorskip("opacus")
    X, y = load_wine(return_X_y=True, as_frame=True)
    for cls in (augment.TabularVAE, augment.TabularGAN):
        gen = tiny(cls, precision="bfloat16", dp_epsilon=3.0, epochs=2).fit(X, y)
        assert gen.privacy_spent_[0] <= 3.0
        assert len(gen.sample(20)[0]) == 20


def test_gradient_penalty_in_bfloat16(labelled):
    # the GAN's critic loss holds a gradient (double backward) under autocast
    X, y = labelled
    gen = tiny(augment.TabularGAN, precision="bfloat16", epochs=2).fit(X, y)
    critic = [r["critic"] for r in gen.history_]
    assert all(np.isfinite(critic)) and critic[0] != critic[1]


def test_save_and_load_keep_the_precision(tmp_path, labelled):
    X, y = labelled
    gen = tiny(augment.TabularVAE, precision="bfloat16").fit(X, y)
    loaded = augment.load(gen.save(tmp_path / "m.augment"))
    assert loaded.get_params()["precision"] == "bfloat16"
    pd.testing.assert_frame_equal(
        loaded.sample(30, random_state=2)[0], gen.sample(30, random_state=2)[0]
    )
    # a float16 model (trained on a GPU) loads on the CPU in float32
    gen.set_params(precision="float16").save(tmp_path / "half.augment")
    with pytest.warns(RuntimeWarning, match="precision='float32'"):
        loaded = augment.load(tmp_path / "half.augment", device="cpu")
    assert loaded.get_params()["precision"] == "float32"
    assert loadable_precision("float16", "cuda") == "float16"


def _regression(precision, loss_scale=1.0, epochs=30):
    """A linear model fitted by the shared loop in ``precision``."""
    rng = torch.Generator().manual_seed(0)
    x = torch.randn((256, 4), generator=rng)
    target = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    model = torch.nn.Linear(4, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1 / loss_scale)

    def step(index):
        error = model(x[index]).squeeze(1) - target[index]
        loss = (error.float() ** 2).mean()
        update(optimiser, loss * loss_scale)
        return {"loss": loss}

    history = run_epochs(
        step, 256, epochs=epochs, batch_size=32, generator=rng, verbose=0,
        desc="test", precision=precision,
    )  # fmt: skip
    return history, model


def test_float16_loss_scaling():
    # the float16 machinery runs on the CPU's autocast too (the estimators
    # refuse float16 there only because it is slow): a loss so small that
    # its float16 gradients underflow without a scale still trains
    precision = Precision("float16", "cpu")
    history, model = _regression(precision, loss_scale=1e-9)
    assert history[-1]["loss"] < 0.05 * history[0]["loss"]
    assert model.weight.dtype == torch.float32
    (scaler,) = precision._scalers.values()
    assert scaler.get_scale() > 1.0
    # without the scale, the same steps learn nothing: the gradient underflows
    unscaled = Precision("float16", "cpu")
    unscaled._scaler = lambda optimiser: torch.amp.GradScaler("cpu", enabled=False)
    flat, _ = _regression(unscaled, loss_scale=1e-9, epochs=3)
    assert flat[-1]["loss"] > 0.5 * flat[0]["loss"]


def test_float16_skips_a_step_that_overflows():
    precision = Precision("float16", "cpu")
    weight = torch.nn.Parameter(torch.ones(3))
    optimiser = torch.optim.SGD([weight], lr=0.1)
    precision.backward(optimiser, (weight * torch.tensor(float("inf"))).sum())
    precision.step(optimiser)
    assert torch.equal(weight.detach(), torch.ones(3))  # skipped, not NaN
    (scaler,) = precision._scalers.values()
    assert scaler.get_scale() < 65536.0  # and the scale backed off

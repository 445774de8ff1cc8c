"""TabularVAE: latent sampling (from the prior or near the rows of the class) and
its default budget of training steps."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import mixed_table, tiny

import augment
from augment import TabularVAE


def labelled(n=60, seed=0):
    rng = np.random.default_rng(seed)
    city = rng.choice(["Lyon", "Oslo", "Lima"], n, p=[0.5, 0.3, 0.2])
    return mixed_table(n, seed), pd.Series(city, name="city")


@pytest.mark.parametrize("mode", ["posterior", "interpolate"])
def test_latent_bank_holds_every_training_row_by_class(mode):
    X, y = labelled()
    gen = tiny(TabularVAE, latent_sampling=mode).fit(X, y)
    latent = gen.training_settings_["latent_dim"]
    assert gen.latent_bank_.shape == (len(X), 2 * latent)
    counts = y.value_counts().reindex(gen.classes_).to_numpy()
    np.testing.assert_array_equal(gen.latent_bank_counts_, counts)
    X_new, y_new = gen.sample(30, y=["Oslo"] * 20 + ["Lima"] * 10)
    assert y_new.value_counts().to_dict() == {"Oslo": 20, "Lima": 10}
    assert list(X_new.columns) == list(X.columns)


def test_prior_keeps_no_bank():
    X, y = labelled()
    gen = tiny(TabularVAE).fit(X, y)
    assert gen.latent_bank_ is None and gen.latent_bank_counts_ is None


def crafted(mode):
    """A fitted generator whose bank is known: class 0 at -10 +- 1, class 1
    at +10 +- 1 in every latent dimension (log-variance log 0.01)."""
    X, y = labelled()
    gen = tiny(TabularVAE, latent_sampling=mode).fit(X, y == "Oslo")
    latent = gen.training_settings_["latent_dim"]
    rng = np.random.default_rng(0)
    means = np.concatenate(
        [rng.uniform(-11, -9, (5, latent)), rng.uniform(9, 11, (7, latent))]
    )
    gen.latent_bank_ = np.hstack([means, np.full_like(means, np.log(0.01))]).astype(
        np.float32
    )
    gen.latent_bank_counts_ = np.array([5, 7])
    return gen, means


def test_interpolation_stays_between_rows_of_the_class():
    gen, means = crafted("interpolate")
    labels = torch.tensor([0] * 200 + [1] * 200)
    z = gen._bank_codes(labels, 400, torch.Generator().manual_seed(0)).numpy()
    for k, rows in ((0, means[:5]), (1, means[5:])):
        part = z[labels.numpy() == k]
        assert (part >= rows.min(0) - 1e-6).all() and (part <= rows.max(0) + 1e-6).all()
    # new points, not copies of the rows
    assert not np.isin(np.round(z, 5), np.round(means, 5)).all(axis=1).any()


def test_posterior_draws_around_a_row_of_the_class():
    gen, means = crafted("posterior")
    labels = torch.tensor([1] * 300)
    z = gen._bank_codes(labels, 300, torch.Generator().manual_seed(0)).numpy()
    nearest = np.abs(z[:, None, :] - means[None, 5:]).max(axis=2).min(axis=1)
    assert (nearest < 0.6).all()  # within 6 standard deviations (0.1) of a row
    assert z.std(axis=0).min() > 0.3  # of several rows, not one


def test_latent_sampling_is_reproducible_and_persists(tmp_path):
    X, y = labelled()
    gen = tiny(TabularVAE, latent_sampling="interpolate").fit(X, y)
    first, _ = gen.sample(20, y="Lyon", random_state=3)
    again, _ = gen.sample(20, y="Lyon", random_state=3)
    pd.testing.assert_frame_equal(first, again)
    loaded = augment.load(gen.save(tmp_path / "vae.augment"))
    pd.testing.assert_frame_equal(loaded.sample(20, y="Lyon", random_state=3)[0], first)


def test_unlabelled_interpolation_draws_from_every_row():
    X, _ = labelled()
    gen = tiny(TabularVAE, latent_sampling="interpolate").fit(X)
    assert gen.latent_bank_counts_.tolist() == [len(X)]
    assert len(gen.sample(7)) == 7


def test_latent_bank_is_refused_under_differential_privacy():
    X, y = labelled()
    with pytest.raises(ValueError, match="latent_sampling='interpolate'"):
        tiny(TabularVAE, latent_sampling="interpolate", dp_epsilon=1.0).fit(X, y)


def test_unknown_latent_sampling():
    X, y = labelled()
    with pytest.raises(ValueError, match="latent_sampling"):
        tiny(TabularVAE, latent_sampling="nearest").fit(X, y)


def test_the_default_budget_of_steps_holds_on_small_tables():
    # capped at 120 epochs, a table of one batch trained for 120 steps only
    # (too few: its synthetic minority rows fell outside their class)
    gen = TabularVAE()
    for n in (40, 200, 256, 700, 3000):
        batch = min(256, n)
        assert gen._step_budget(n, batch) * (n // batch) >= 600
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 2)), columns=["a", "b"])
    gen = TabularVAE(latent_dim=2, hidden_dims=(8,), random_state=0)
    gen.fit(X, np.arange(40) % 2)
    assert gen.training_settings_["epochs"] == len(gen.history_) == 600

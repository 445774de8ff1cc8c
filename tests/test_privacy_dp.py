"""Differential privacy: the accounting, the clipping, the private statistics,
a canary. Runs where Opacus is installed (the [dp] extra)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("opacus")

from conftest import tiny  # noqa: E402
from opacus.accountants import RDPAccountant  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from augment import TabularGAN, TabularTransformer, TabularVAE  # noqa: E402
from augment.nn.privacy import ALPHAS, PrivacyBudget, PrivateGradient  # noqa: E402

CATEGORIES = {"city": ["Lyon", "Oslo", "Lima"], "plan": ["basic", "pro"]}


def small_table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(3, 0.4, n),
            "age": rng.integers(18, 90, n),
            "city": rng.choice(["Lyon", "Oslo", "Lima"], n, p=[0.5, 0.3, 0.2]),
            "plan": rng.choice(["basic", "pro"], n).astype(object),
        }
    )
    y = (X["age"] + rng.normal(0, 10, n) > 50).astype(int)
    return X, y


@pytest.fixture(
    params=[TabularVAE, TabularGAN, TabularTransformer], ids=lambda c: c.__name__
)
def private_class(request):
    return request.param


def test_spent_epsilon_is_opacus_accounting_of_what_ran(private_class):
    X, y = small_table()
    gen = tiny(private_class, dp_epsilon=2.0, dp_categories=CATEGORIES).fit(X, y)
    epsilon, delta = gen.privacy_spent_
    assert delta == 1e-5  # min(1e-5, 1 / (10 n))
    parts = gen.privacy_report_["mechanisms"]
    training = parts[-1]
    batch = min(gen.batch_size, len(X))
    assert training["sample_rate"] == pytest.approx(batch / len(X))
    assert training["steps"] == len(gen.history_) * (len(X) // batch)
    # Opacus' own accountant, stepped as an optimiser would be
    accountant = RDPAccountant()
    for part in parts:
        for _ in range(part["steps"]):
            accountant.step(
                noise_multiplier=part["noise_multiplier"],
                sample_rate=part["sample_rate"],
            )
    # on our grid of Renyi orders, within 2% of Opacus' default grid
    assert accountant.get_epsilon(delta, alphas=ALPHAS) == pytest.approx(epsilon)
    assert epsilon <= 1.02 * accountant.get_epsilon(delta)
    assert 0.95 * 2.0 < epsilon <= 2.0


@pytest.mark.parametrize("target", [0.5, 3.0])
@pytest.mark.parametrize("epochs", [1, 7, 60])
def test_budget_is_never_exceeded(target, epochs):
    budget = PrivacyBudget(target, 1e-5)
    budget.add("statistics", budget.gaussian_noise(0.2))
    noise = budget.calibrate(
        sample_rate=0.05, steps_per_epoch=20, epochs=epochs, max_noise=1e3, what="x"
    )
    spent = budget.epsilon_of([(noise, 0.05, 20 * epochs)])
    assert 0.95 * target < spent <= target
    # less noise would overspend
    assert budget.epsilon_of([(noise * 0.97, 0.05, 20 * epochs)]) > target


def test_too_small_budget_names_the_epochs_that_fit():
    budget = PrivacyBudget(1.0, 1e-5)
    settings = dict(sample_rate=0.5, steps_per_epoch=2, max_noise=5.0, what="x")
    with pytest.raises(ValueError, match=r"(?i)at most (\d+) epochs fit") as error:
        budget.calibrate(epochs=500, **settings)
    fit = int(error.value.args[0].lower().split("at most ")[1].split()[0])
    assert "dp_epsilon >=" in str(error.value)
    budget.calibrate(epochs=fit, **settings)  # fits
    with pytest.raises(ValueError):
        budget.calibrate(epochs=fit + 1, **settings)


def test_too_small_budget_in_fit():
    X, y = small_table()
    gen = tiny(TabularVAE, dp_epsilon=0.05, epochs=400, dp_categories=CATEGORIES)
    with pytest.raises(ValueError, match="too small for 400 epochs"):
        gen.fit(X, y)


def test_per_sample_gradients_are_clipped():
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    rows = torch.randn(7, 3) * torch.arange(1, 8)[:, None]  # growing norms

    def loss(module, x):
        return (module(x) ** 2).sum()

    private = PrivateGradient(
        module,
        loss,
        noise_multiplier=0.0,
        max_grad_norm=1.5,
        expected_batch_size=10.0,
        generator=torch.Generator().manual_seed(0),
    )
    private(rows)
    expected, norms = [torch.zeros_like(p) for p in module.parameters()], []
    for x in rows:
        grads = torch.autograd.grad(loss(module, x[None]), list(module.parameters()))
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        norms.append(norm)
        factor = min(1.0, 1.5 / (float(norm) + 1e-6))
        expected = [e + factor * g for e, g in zip(expected, grads, strict=True)]
    norms = torch.stack(norms)
    assert (norms > 1.5).sum() >= 3  # clipping did something
    torch.testing.assert_close(private.last_norms, norms)
    for p, e in zip(module.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, e / 10.0)
    # noise: the gradient moves by noise_multiplier * max_grad_norm / batch
    private.noise_multiplier = 4.0
    before = [p.grad.clone() for p in module.parameters()]
    for p in module.parameters():
        p.grad = None
    private(rows)
    moved = torch.cat(
        [(p.grad - b).ravel() for p, b in zip(module.parameters(), before)]
    )
    assert 0.2 < float(moved.std()) / (4.0 * 1.5 / 10.0) < 3


def test_empty_poisson_batch_is_noise_only():
    module = torch.nn.Linear(2, 1)
    private = PrivateGradient(
        module,
        lambda m, x: m(x).sum(),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        expected_batch_size=4.0,
        generator=torch.Generator().manual_seed(0),
    )
    private(torch.zeros((0, 2)))
    assert module.weight.grad.abs().sum() > 0 and private.steps == 1


def test_encoder_statistics_are_noised_unless_declared():
    X, y = small_table()
    exact = tiny(TabularVAE).fit(X, y)
    bounds = {"age": (0, 120)}
    private = tiny(
        TabularVAE, dp_epsilon=1.0, dp_categories=CATEGORIES, dp_bounds=bounds
    ).fit(X, y)
    specs = {s.name: s for s in private.encoder_.columns_}
    exact_specs = {s.name: s for s in exact.encoder_.columns_}
    for column in ("income", "age"):
        ours, real = specs[column], exact_specs[column]
        assert (ours.low, ours.high) != (real.low, real.high)
        assert len(ours.means) != len(real.means) or not np.allclose(
            ours.means, real.means
        )
    assert 0 <= specs["age"].low and specs["age"].high <= 120
    assert specs["age"].step == 1  # integers stay integers (from the dtype)
    assert not np.allclose(private.class_prior_, exact.class_prior_)
    # declared categories are public: all of them, whatever their counts
    assert set(specs["city"].categories) == set(CATEGORIES["city"])
    names = [m["part"] for m in private.privacy_report_["mechanisms"]]
    assert names[0].startswith("encoder and conditioning statistics")


def test_undeclared_rare_values_are_suppressed():
    X, y = small_table(n=3000)
    X.loc[:4, "city"] = "Rome"  # five rows: far under the release threshold
    gen = tiny(TabularVAE, dp_epsilon=3.0).fit(X, y)
    spec = {s.name: s for s in gen.encoder_.columns_}["city"]
    assert "Rome" not in set(spec.categories) and spec.rare_values is None
    assert {"Lyon", "Oslo", "Lima"} <= set(spec.categories)
    assert "Rome" not in set(gen.sample(2000)[0]["city"].dropna())
    report = gen.privacy_report_
    assert report["mechanisms"][0]["delta"] == pytest.approx(report["delta"] / 10)
    assert report["epsilon"] <= 3.0


def test_canary_is_not_reproduced():
    rng = np.random.default_rng(1)
    n = 300
    X = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(0, 1, n)})
    canary = np.array([40.0, -40.0])
    X.iloc[0] = canary
    bounds = {"a": (-50, 50), "b": (-50, 50)}
    distances = {}
    for name, data in (("with", X), ("without", X.iloc[1:])):
        gen = tiny(TabularVAE, dp_epsilon=1.0, dp_bounds=bounds, epochs=5)
        synthetic = gen.fit(data).sample(3000).to_numpy()
        distances[name] = np.sort(np.linalg.norm(synthetic - canary, axis=1))[:20]
    # the canary's region is as empty with it as without it: no echo of the row
    assert distances["with"][0] > 10  # the canary is 56 away from the others
    assert distances["with"].mean() > 0.8 * distances["without"].mean()
    # without DP the encoder alone keeps the outlier reachable
    exact = tiny(TabularVAE, epochs=5).fit(X)
    assert exact.encoder_.columns_[0].high == 40.0


def test_bad_input():
    X, y = small_table(n=100)
    for params in (dict(dp_epsilon=0), dict(dp_epsilon=-1.0), dict(dp_delta=1.0)):
        with pytest.raises(InvalidParameterError):
            tiny(TabularVAE, **{"dp_epsilon": 1.0, **params}).fit(X, y)
    with pytest.warns(UserWarning, match="at least 1/n_rows"):
        tiny(TabularVAE, dp_epsilon=1.0, dp_delta=0.05, dp_categories=CATEGORIES).fit(
            X, y
        )
    with pytest.warns(UserWarning, match="'age' has values outside its declared"):
        tiny(
            TabularVAE,
            dp_epsilon=1.0,
            dp_bounds={"age": (20, 60)},
            dp_categories=CATEGORIES,
        ).fit(X, y)
    with pytest.raises(ValueError, match="'city' is categorical"):
        tiny(TabularVAE, dp_epsilon=1.0, dp_bounds={"city": (0, 1)}).fit(X, y)
    with pytest.raises(ValueError, match=r"\['nope'\], which are not columns"):
        tiny(TabularVAE, dp_epsilon=1.0, dp_categories={"nope": [1]}).fit(X, y)
    with pytest.raises(ValueError, match="No value of column 'city' can be released"):
        tiny(TabularVAE, dp_epsilon=1.0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # declared values outside: one warning
        with pytest.raises(UserWarning, match="outside its declared dp_categories"):
            tiny(
                TabularGAN,
                dp_epsilon=1.0,
                dp_categories={**CATEGORIES, "city": ["Lyon"]},
            ).fit(X, y)


def test_private_sampling_is_reproducible_and_conditional(private_class):
    X, y = small_table()
    params = dict(dp_epsilon=3.0, dp_categories=CATEGORIES)
    first = tiny(private_class, **params).fit(X, y)
    a = first.sample(50, y=1)
    b = tiny(private_class, **params).fit(X, y).sample(50, y=1)
    pd.testing.assert_frame_equal(a[0], b[0])
    assert (a[1] == 1).all()
    # losses on real rows are not released (the generator's are: it never
    # sees a real row)
    released = set().union(*first.history_) - {"epoch"}
    assert released == (
        {"generator", "adversarial", "condition"}
        if private_class is TabularGAN
        else set()
    )


def test_no_point_masses_are_found_under_dp():
    X, y = small_table()
    X["debt"] = np.where(np.arange(len(X)) % 5 < 2, 0.0, X["income"])  # 40% zeros
    exact = tiny(TabularVAE).fit(X, y)
    assert {s.name: s for s in exact.encoder_.columns_}["debt"].points.tolist() == [0]
    private = tiny(TabularVAE, dp_epsilon=1.0, dp_categories=CATEGORIES).fit(X, y)
    for spec in private.encoder_.columns_:
        assert spec.kind == "categorical" or len(spec.points) == 0


def test_numbers_are_encoded_by_their_noisy_distribution():
    from augment.tabular.encoder import decode_numbers, encode_numbers

    X, y = small_table(n=2000)
    bounds = {"income": (0, 500)}  # a wide public range: the rows sit near 20
    gen = tiny(
        TabularVAE, dp_epsilon=3.0, dp_categories=CATEGORIES, dp_bounds=bounds
    ).fit(X, y)
    spec = {s.name: s for s in gen.encoder_.columns_}["income"]
    assert np.all(np.diff(spec.warp_x) > 0) and np.all(np.diff(spec.warp_u) > 0)
    assert spec.warp_u[0] == -1 and spec.warp_u[-1] == 1
    x = X["income"].to_numpy()
    _, scalar = encode_numbers(spec, x)
    # the rows spread over the scalar range (a linear map of (0, 500) would
    # hold them within 0.1 of each other)
    assert scalar.std() > 0.3
    # the map is the noisy cumulative distribution, not the exact one
    exact = 2 * (x[:, None] <= spec.warp_x).mean(axis=0) - 1
    assert not np.allclose(exact, spec.warp_u, atol=1e-3)
    # numbers within the map's span come back within a bin of the public grid
    inside = (x >= spec.warp_x[0]) & (x <= spec.warp_x[-1])
    back = decode_numbers(spec, np.zeros(len(x), int), scalar)
    assert inside.mean() > 0.9
    assert np.abs(back - x)[inside].max() < 500 / 32
    # on a few rows no bins clear the noise: a linear map of the whole range,
    # which clips nothing
    X, y = small_table(n=100)
    gen = tiny(
        TabularVAE, dp_epsilon=1.0, dp_categories=CATEGORIES, dp_bounds=bounds
    ).fit(X, y)
    spec = {s.name: s for s in gen.encoder_.columns_}["income"]
    assert spec.warp_x is None and len(spec.means) == 1
    x = np.array([1.0, 20.0, 450.0])
    mode, scalar = encode_numbers(spec, x)
    np.testing.assert_allclose(decode_numbers(spec, mode, scalar), x, rtol=1e-6)


def test_private_vae_starts_from_the_noisy_class_frequencies():
    rng = np.random.default_rng(0)
    n = 2000
    y = pd.Series(rng.integers(0, 2, n))
    city = np.where(
        y == 1,
        rng.choice(["Lyon", "Oslo", "Lima"], n, p=[0.9, 0.05, 0.05]),
        rng.choice(["Lyon", "Oslo", "Lima"], n, p=[0.1, 0.45, 0.45]),
    )
    X = pd.DataFrame({"city": city, "x": rng.normal(0, 1, n)})
    public = {"city": CATEGORIES["city"]}
    gen = tiny(TabularVAE, dp_epsilon=1.0, dp_categories=public, epochs=2).fit(X, y)
    # the class log-ratios are the conditioning's noisy frequencies, fixed
    counts = gen.conditioning_.counts.double()[0, :3]  # (slot, class)
    ratio = (counts / counts.sum(0)) / (counts.sum(1, keepdim=True) / counts.sum())
    start = gen.encoder_.columns_[0].spans[0].start
    logits = gen.module_.class_logits[:, start : start + 3].double()
    torch.testing.assert_close(logits, ratio.log().T, rtol=1e-4, atol=1e-4)
    # so that two epochs of DP-SGD already sample the class's own values
    for label, share in ((1, 0.9), (0, 0.1)):
        X_new, _ = gen.sample(2000, y=label, random_state=0)
        assert abs((X_new["city"] == "Lyon").mean() - share) < 0.1
    # without privacy the model learns them: no start
    plain = tiny(TabularVAE, epochs=1).fit(X, y)
    assert plain.module_.class_logits is None


def test_private_fit_chooses_its_own_training_settings(private_class):
    X, y = small_table(n=300)
    size, chosen_size = {
        TabularVAE: ("hidden_dims", [16]),
        TabularGAN: ("critic_dims", [16]),
        TabularTransformer: ("width", 16),
    }[private_class]
    params = dict(dp_epsilon=3.0, dp_categories=CATEGORIES, random_state=0)
    gen = private_class(**params).fit(X, y)
    settings = gen.training_settings_
    epochs = private_class._private_settings["epochs"]  # 30, the transformer 100
    expected = {"batch_size": 300, "epochs": epochs, "learning_rate": 2e-2}
    assert {k: settings[k] for k in expected} == expected
    assert settings[size] == private_class._private_settings[size]
    assert settings[size] != private_class._settings[size]  # a smaller network
    # the parameters stay as the user set them (sklearn's clone relies on it)
    assert gen.get_params()["batch_size"] is None and gen.get_params()[size] is None
    # the accounting is that of the settings trained with: full Poisson batches
    training = gen.privacy_report_["mechanisms"][-1]
    assert training["sample_rate"] == 1.0 and training["steps"] == epochs
    assert len(gen.history_) == epochs
    # without privacy, None means the usual defaults
    plain = private_class(epochs=1, random_state=0).fit(X, y).training_settings_
    assert plain[size] == private_class._settings[size]
    assert plain["batch_size"] == min(private_class._settings["batch_size"], 300)
    # what the user sets is kept, under privacy too
    chosen = dict(batch_size=100, epochs=4, learning_rate=1e-3, **{size: chosen_size})
    kept = private_class(**params, **chosen).fit(X, y)
    as_set = tuple(chosen_size) if isinstance(chosen_size, list) else chosen_size
    assert kept.training_settings_ == {**settings, **chosen, size: as_set}
    assert kept.privacy_report_["mechanisms"][-1]["sample_rate"] == 100 / 300


@pytest.mark.parametrize("chunk_values", [4, 2**24])
def test_clipped_sum_is_the_same_in_chunks(monkeypatch, chunk_values):
    # per-row gradients are computed a few rows at a time (bounded memory):
    # the clipped sum must not depend on the chunking
    import augment.nn.privacy as privacy

    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)  # 8 parameters: chunks of one row at 4
    rows = torch.randn(9, 3) * torch.arange(1, 10)[:, None]

    def run(chunk):
        monkeypatch.setattr(privacy, "_CHUNK_VALUES", chunk)
        for p in module.parameters():
            p.grad = None
        private = PrivateGradient(
            module,
            lambda m, x: (m(x) ** 2).sum(),
            noise_multiplier=0.5,
            max_grad_norm=2.0,
            expected_batch_size=9.0,
            generator=torch.Generator().manual_seed(1),
        )
        private(rows)
        return [p.grad.clone() for p in module.parameters()], private.last_norms

    grads, norms = run(chunk_values)
    reference, reference_norms = run(10**9)
    torch.testing.assert_close(norms, reference_norms)
    for a, b in zip(grads, reference, strict=True):
        torch.testing.assert_close(a, b)


def test_private_model_saves_and_loads(private_class, tmp_path):
    from augment.io import load, save

    X, y = small_table(n=200)
    gen = tiny(private_class, dp_epsilon=2.0, dp_categories=CATEGORIES).fit(X, y)
    path = save(gen, tmp_path / "private.augment")
    loaded = load(path)
    assert loaded.privacy_spent_ == gen.privacy_spent_
    assert loaded.privacy_report_ == gen.privacy_report_
    assert loaded.training_settings_ == gen.training_settings_
    assert loaded.get_params() == gen.get_params()
    # the loaded model samples what the saved one samples
    for a, b in zip(
        loaded.sample(100, random_state=3), gen.sample(100, random_state=3), strict=True
    ):
        pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    # and the noisy conditioning frequencies come back, not the exact ones
    torch.testing.assert_close(
        torch.as_tensor(loaded.conditioning_.counts),
        torch.as_tensor(gen.conditioning_.counts),
    )


def wide_table(n, seed=0):
    """Numbers with a wide public range and three classes."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(3, 0.5, n),
            "age": rng.normal(40, 10, n).clip(18, 90),
            "years": rng.poisson(8, n),  # integers: values repeat
        }
    )
    y = pd.Series(rng.choice(["a", "b", "c"], n, p=[0.45, 0.45, 0.1]))
    return X, y, {"income": (0.0, 500.0), "age": (18.0, 90.0), "years": (0, 60)}


@pytest.mark.parametrize("seed", range(6))
def test_tiny_tables_spend_their_noise_on_what_can_be_released(seed):
    from augment.tabular.private import private_encoding

    # 120 rows at epsilon 1: no bin of a number could clear the noise, so no
    # number's histogram is released and the class counts get all of it
    X, y, bounds = wide_table(120, seed)
    labels = pd.factorize(y, sort=True)[0]
    budget = PrivacyBudget(1.0, 1e-5)
    found = private_encoding(
        X, labels, 3, budget, bounds=bounds, categories={}, seed=seed
    )
    assert budget.mechanisms[0]["part"].startswith(
        "encoder and conditioning statistics: Gaussian noisy counts of 1 tables"
    )
    std = budget.mechanisms[0]["noise_multiplier"]  # one table: sensitivity 1
    assert all(s.warp_x is None for s in found.encoder.columns_)
    # a class whose noisy count fell below zero keeps a pseudo-count of one
    # noise deviation: it is still sampled
    assert found.class_counts.min() >= std
    # on many rows the numbers' histograms are released, and encode them
    X, y, bounds = wide_table(3000, seed)
    budget = PrivacyBudget(1.0, 1e-5)
    labels = pd.factorize(y, sort=True)[0]
    found = private_encoding(
        X, labels, 3, budget, bounds=bounds, categories={}, seed=seed
    )
    assert "noisy counts of 4 tables" in budget.mechanisms[0]["part"]
    assert all(s.warp_x is not None for s in found.encoder.columns_)


def test_noisy_cdf_spans_the_declared_range_without_pile_ups():
    from augment.tabular.encoder import decode_numbers, encode_numbers

    X, y, bounds = wide_table(3000)
    gen = tiny(TabularVAE, dp_epsilon=1.0, dp_bounds=bounds, epochs=1).fit(X, y)
    spec = {s.name: s for s in gen.encoder_.columns_}["income"]
    # the map reaches the declared ends: values beyond the kept bins are
    # encoded inside (-1, 1) and decoded where they were, within a segment
    assert (spec.warp_x[0], spec.warp_x[-1]) == bounds["income"]
    x = np.array([150.0, 300.0, 499.0])
    mode, scalar = encode_numbers(spec, x)
    assert np.all(np.abs(scalar) < 1) and len(np.unique(scalar)) == 3
    np.testing.assert_allclose(decode_numbers(spec, mode, scalar), x, rtol=1e-6)
    # integers too, beyond the kept bins (and not snapped onto the
    # surrogate's values, which stop there)
    spec = {s.name: s for s in gen.encoder_.columns_}["years"]
    assert spec.seen is None
    x = np.array([30.0, 45.0])
    np.testing.assert_array_equal(decode_numbers(spec, *encode_numbers(spec, x)), x)
    # the scales of those scalars start at the noisy CDF's spread (at most a
    # uniform's 0.58 on [-1, 1]), not at 0.1: one epoch could not get there
    scalars = gen.module_.layout.scalar_index
    sigma = gen.module_._sigma()[scalars]
    assert torch.all(sigma > 0.25)
    # sampled scalars are reflected into [-1, 1], not clipped onto its ends
    X_new, _ = gen.sample(3000, random_state=0)
    for column, (low, high) in bounds.items():
        at_ends = np.isclose(X_new[column], low) | np.isclose(X_new[column], high)
        assert at_ends.mean() < 0.005, column


# ------------------------------------------------------- TabularTransformer
def test_transformer_tokens_come_from_the_private_release_only():
    from augment.tabular.transformer import _private_bins, _Tokens

    X, y = small_table(n=3000)
    X["flag"] = np.random.default_rng(0).integers(0, 2, len(X))
    bounds = {"income": (0.0, 200.0), "age": (0, 120), "flag": (0, 1)}
    params = dict(dp_categories=CATEGORIES, dp_bounds=bounds, epochs=1)
    gen = tiny(TabularTransformer, dp_epsilon=1.0, **params).fit(X, y)
    specs = gen.encoder_.columns_
    assert not hasattr(gen, "_private_moments")  # the VAE's start, not kept
    # no quantiles of the rows within the bins: a uniform draw in each
    assert gen._bin_knots is None and gen.module_.tokens.knots is None
    # every stored bin is a function of the private encoder alone
    expected = _private_bins(specs, gen.n_bins)
    assert sorted(gen._token_bins) == sorted(expected)
    for j, bins in expected.items():
        for stored, computed in zip(gen._token_bins[j], bins, strict=True):
            np.testing.assert_array_equal(stored, computed)
    income = [s.name for s in specs].index("income")
    lo, hi, exact, _ = gen._token_bins[income]
    # the noisy CDF's equal-mass bins: many of them where the rows are, and
    # the first and last reach the declared range, not the rows' extremes
    assert not exact.any() and len(lo) == gen.n_bins
    assert (lo[0], hi[-1]) == bounds["income"]
    assert (hi < 60).sum() > gen.n_bins // 2  # the rows lie under 60
    # no edge is a training value; the exact model's quantile edges all are
    x = X["income"].to_numpy()
    assert not np.isin(np.concatenate([lo, hi]), x).any()
    rows = torch.as_tensor(gen.encoder_.transform(X), dtype=torch.float32)
    exact_lo = _Tokens(specs, rows, gen.n_bins).fitted[income][0]
    assert np.isin(exact_lo[1:], gen.encoder_.inverse_transform(rows)["income"]).all()
    # every row the encoding holds has a token: the bins leave no gaps
    _, density = gen.module_.tokens.tokenise(rows, within=True)
    assert torch.isfinite(density).all()
    # integers: whole steps, within the declared range
    age = [s.name for s in specs].index("age")
    lo, hi, _, _ = gen._token_bins[age]
    np.testing.assert_allclose(lo[1:] - hi[:-1], 1 - 2 * 0.499)
    assert lo[0] >= -0.5 and hi[-1] <= 120.5
    # a 0/1 column gets a token per value
    lo, hi, _, _ = gen._token_bins[[s.name for s in specs].index("flag")]
    np.testing.assert_allclose(np.stack([lo, hi]), [[-0.499, 0.501], [0.499, 1.499]])


def test_transformer_canary_is_no_token_edge():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(0, 1, 300), "b": rng.normal(0, 1, 300)})
    X.iloc[0] = [40.0, -40.0]
    bounds = {"a": (-50, 50), "b": (-50, 50)}
    exact = tiny(TabularTransformer, epochs=1).fit(X)
    assert exact._token_bins[0][1].max() == 40.0  # the outlier is a bin edge
    private = tiny(TabularTransformer, dp_epsilon=1.0, dp_bounds=bounds, epochs=3)
    private.fit(X)
    for j in (0, 1):
        lo, hi, _, _ = private._token_bins[j]
        assert not np.isin([40.0, -40.0], np.concatenate([lo, hi])).any()
        assert (lo[0], hi[-1]) == (-50, 50)
    synthetic = private.sample(2000, random_state=0).to_numpy()
    assert np.linalg.norm(synthetic - [40.0, -40.0], axis=1).min() > 10


@pytest.mark.parametrize("network", ["mlp", "transformer"])
def test_transformer_dp_sgd_clips_per_row_gradients(network):
    # the per-row gradients of the transformer's own loss, through vmap, are
    # those of a loop over the rows, clipped
    from augment.nn.privacy import PrivateGradient

    X, y = small_table(n=60)
    gen = tiny(TabularTransformer, network=network, width=16, epochs=1).fit(X, y)
    module = gen.module_.train()
    rows = torch.as_tensor(gen.encoder_.transform(X), dtype=torch.float32)
    tokens = module.tokens.tokenise(rows)
    labels = torch.as_tensor(gen._class_index(y.to_numpy()))
    known = torch.rand(tokens.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    if network == "transformer":  # the attention a private model uses: the same
        fused = module.log_probs(tokens, known, labels)
        for block in module.blocks:
            block.explicit = True
        torch.testing.assert_close(module.log_probs(tokens, known, labels), fused)

    def loss(module, tokens, known, label):
        log_probs = module.log_probs(tokens, known, label)
        picked = log_probs.gather(2, tokens.unsqueeze(2)).squeeze(2)
        return -(picked * ~known).sum()

    private = PrivateGradient(
        module,
        loss,
        noise_multiplier=0.0,
        max_grad_norm=0.5,
        expected_batch_size=60.0,
        generator=torch.Generator().manual_seed(0),
    )
    for p in module.parameters():
        p.grad = None
    private(tokens, known, labels)
    params = list(module.parameters())
    expected, norms = [torch.zeros_like(p) for p in params], []
    for i in range(len(tokens)):
        one = (tokens[i : i + 1], known[i : i + 1], labels[i : i + 1])
        grads = torch.autograd.grad(loss(module, *one), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
        norms.append(torch.sqrt(sum((g**2).sum() for g in grads)))
        factor = min(1.0, 0.5 / (float(norms[-1]) + 1e-6))
        expected = [e + factor * g for e, g in zip(expected, grads, strict=True)]
    norms = torch.stack(norms)
    assert (norms > 0.5).sum() >= 10  # clipping did something
    torch.testing.assert_close(private.last_norms, norms, rtol=1e-4, atol=1e-6)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e / 60.0, rtol=1e-4, atol=1e-6)


def test_private_transformer_conditions_and_class_counts():
    X, y = small_table()
    gen = tiny(TabularTransformer, dp_epsilon=3.0, dp_categories=CATEGORIES).fit(X, y)
    assert gen.privacy_spent_[0] <= 3.0
    parts = [m["part"] for m in gen.privacy_report_["mechanisms"]]
    assert parts[-1] == "training: DP-SGD on the whole network"
    X_new, y_new = gen.sample(120, y=0, conditions={"city": "Oslo", "age": (30, 40)})
    assert (y_new == 0).all() and len(y_new) == 120
    assert (X_new["city"] == "Oslo").all() and X_new["age"].between(30, 40).all()
    X_res, y_res = gen.fit_resample(X, y)
    counts = pd.Series(y_res).value_counts()
    assert counts[0] == counts[1] == max(y.value_counts())
    # the class prior is the noisy one, not the rows' own
    exact = np.bincount(y) / len(y)
    assert not np.allclose(gen.class_prior_, exact)
    # the logits' fixed term of a category is its noisy frequency in each
    # class (the conditioning's, post-processing of the release)
    tokens = gen.module_.tokens
    j = tokens.index("city")
    start, size = tokens.offsets[j], tokens.sizes[j]
    counts = gen.conditioning_.counts[0, :size].double()
    expected = (counts / counts.sum(0)).clamp_min(1e-3).log().T.float()
    torch.testing.assert_close(gen.module_.prior[:, start : start + size], expected)
    # and nothing without privacy
    assert tiny(TabularTransformer, epochs=1).fit(X, y).module_.prior is None


def test_private_transformer_bad_input():
    X, y = small_table(n=200)
    with pytest.raises(InvalidParameterError):
        tiny(TabularTransformer, dp_epsilon=0).fit(X, y)
    with pytest.raises(ValueError, match="too small for 400 epochs"):
        tiny(
            TabularTransformer, dp_epsilon=0.05, epochs=400, dp_categories=CATEGORIES
        ).fit(X, y)
    with pytest.raises(ValueError, match="width=30 must be a multiple of heads=4"):
        tiny(
            TabularTransformer,
            dp_epsilon=1.0,
            dp_categories=CATEGORIES,
            network="transformer",
            width=30,
        ).fit(X, y)
    with pytest.raises(ValueError, match="No value of column 'city' can be released"):
        tiny(TabularTransformer, dp_epsilon=1.0).fit(X, y)


def two_class_table(n=3000, seed=0):
    """A number whose distribution differs between the two classes."""
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["a", "b"], n, p=[0.6, 0.4]))
    x = np.where(y == "a", rng.normal(20, 3, n), rng.normal(40, 3, n))
    X = pd.DataFrame({"x": x.clip(0, 60), "z": rng.normal(0, 1, n).clip(-5, 5)})
    return X, y, {"x": (0.0, 60.0), "z": (-5.0, 5.0)}


def test_per_class_counts_cost_what_one_release_costs():
    from augment.nn.privacy import PREPROCESSING_SHARE
    from augment.tabular.private import private_encoding

    X, y, bounds = two_class_table()
    labels = (y == "b").to_numpy().astype(np.int64)
    records = []
    for class_marginals in (False, True):
        budget = PrivacyBudget(3.0, 1e-5)
        encoding = private_encoding(
            X,
            labels,
            2,
            budget,
            bounds=bounds,
            categories={},
            seed=0,
            class_marginals=class_marginals,
        )
        records.append(budget.mechanisms)
        specs = {s.name: s for s in encoding.encoder.columns_}
        assert (specs["x"].class_warp_u is not None) == class_marginals

    # the same one Gaussian mechanism: a row is in one cell of each table
    # whatever its class, so counting per class does not add to the L2
    # sensitivity (parallel composition)
    def cost(mechanisms):
        return [{k: v for k, v in m.items() if k != "part"} for m in mechanisms]

    assert cost(records[0]) == cost(records[1])
    alone = PrivacyBudget(3.0, 1e-5)
    noise = alone.gaussian_noise(PREPROCESSING_SHARE)
    assert records[1][0]["noise_multiplier"] == noise
    gen = tiny(TabularVAE, dp_epsilon=3.0, dp_bounds=bounds).fit(X, y)
    part = gen.privacy_report_["mechanisms"][0]["part"]
    assert "per class" in part and "sqrt(3)" in part


def test_samples_of_each_class_follow_its_noisy_distribution():
    from augment.tabular.encoder import decode_numbers

    X, y, bounds = two_class_table()
    gen = tiny(TabularVAE, dp_epsilon=10.0, dp_bounds=bounds, epochs=2).fit(X, y)
    spec = {s.name: s for s in gen.encoder_.columns_}["x"]
    maps = spec.class_warp_u
    assert maps.shape == (2, len(spec.warp_x))
    assert np.all(np.diff(maps, axis=1) > 0)
    assert np.all(maps[:, 0] == -1) and np.all(maps[:, -1] == 1)
    medians = [np.interp(0.0, u, spec.warp_x) for u in maps]
    assert abs(medians[0] - 20) < 4 and abs(medians[1] - 40) < 4
    # noisy, not the exact distributions within the classes
    for k, label in enumerate("ab"):
        exact = X["x"][y == label].to_numpy()
        exact_u = 2 * (exact[:, None] <= spec.warp_x).mean(axis=0) - 1
        assert not np.allclose(exact_u, maps[k], atol=1e-3)
    # decoding: uniform scalars of class k come out by class k's map
    u = np.linspace(-1, 1, 2001)
    for k in (0, 1):
        x = decode_numbers(spec, np.zeros(len(u), int), u, np.full(len(u), k))
        inside = (spec.warp_x > x.min()) & (spec.warp_x < x.max())
        share = (x[:, None] <= spec.warp_x[inside]).mean(axis=0)
        np.testing.assert_allclose(2 * share - 1, maps[k][inside], atol=0.01)
    # and so do the model's samples of each class (a barely trained model)
    for label, centre in (("a", 20), ("b", 40)):
        X_new, _ = gen.sample(2000, y=label, random_state=0)
        assert abs(X_new["x"].median() - centre) < 5
    # the whole column's map is unchanged by the classes: the number without
    # labels decodes by it
    x = decode_numbers(spec, np.zeros(len(u), int), u)
    np.testing.assert_allclose(x, np.interp(u, spec.warp_u, spec.warp_x))


def test_small_classes_keep_the_whole_columns_distribution():
    X, y, bounds = two_class_table()
    y = y.where(np.arange(len(y)) >= 12, "c")  # twelve rows: mostly noise
    gen = tiny(TabularVAE, dp_epsilon=1.0, dp_bounds=bounds, epochs=1).fit(X, y)
    spec = gen.encoder_.columns_[0]
    small, large = (list(gen.classes_).index(c) for c in "ca")
    np.testing.assert_allclose(spec.class_warp_u[small], spec.warp_u, atol=0.05)
    assert np.abs(spec.class_warp_u[large] - spec.warp_u).max() > 0.2


def test_too_few_rows_per_class_count_the_whole_table():
    from augment.tabular.private import private_encoding

    # 400 rows in two classes at epsilon 1: no cell of a class could clear
    # its noise, so the numbers are counted as without classes
    X, y, bounds = two_class_table(n=400)
    labels = (y == "b").to_numpy().astype(np.int64)
    encodings = [
        private_encoding(
            X,
            labels,
            2,
            PrivacyBudget(1.0, 1e-5),
            bounds=bounds,
            categories={},
            seed=0,
            class_marginals=class_marginals,
        )
        for class_marginals in (False, True)
    ]
    for a, b in zip(*(e.encoder.columns_ for e in encodings), strict=True):
        assert b.class_warp_u is None
        np.testing.assert_array_equal(a.warp_x, b.warp_x)
        np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_array_equal(encodings[0].moments, encodings[1].moments)


def test_class_maps_have_no_canary_edge_and_save_and_load(tmp_path):
    from augment.io import load, save

    X, y, bounds = two_class_table()
    X.loc[0, "x"], y[0] = 58.7, "b"  # an outlier of class b
    distances = {}
    for name, (data, labels) in {
        "with": (X, y),
        "without": (X.iloc[1:], y.iloc[1:]),
    }.items():
        gen = tiny(TabularVAE, dp_epsilon=3.0, dp_bounds=bounds, epochs=2)
        gen.fit(data, labels)
        spec = gen.encoder_.columns_[0]
        assert spec.class_warp_u is not None and 58.7 not in spec.warp_x
        X_new, _ = gen.sample(3000, y="b", random_state=0)
        distances[name] = np.sort(np.abs(X_new["x"].to_numpy() - 58.7))[:20].mean()
    assert distances["with"] > 0.8 * distances["without"]
    # saved and loaded: the same maps, the same samples; the same seed: the
    # same model
    loaded = load(save(gen, tmp_path / "classes.augment"))
    np.testing.assert_array_equal(
        loaded.encoder_.columns_[0].class_warp_u, spec.class_warp_u
    )
    again = tiny(TabularVAE, dp_epsilon=3.0, dp_bounds=bounds, epochs=2)
    again.fit(X.iloc[1:], y.iloc[1:])
    for other in (loaded, again):
        a, b = other.sample(500, random_state=4), gen.sample(500, random_state=4)
        pd.testing.assert_frame_equal(a[0], b[0])
        np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))

"""TabularTransformer: range conditions, several conditions at once, log_prob,
and what any-order training buys (a later column drives an earlier one)."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import mixed_table, tiny
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from augment import TabularGAN, TabularTransformer, TabularVAE


@pytest.fixture(scope="module")
def fitted():
    X = mixed_table(200)
    y = pd.Series(["no"] * 120 + ["yes"] * 50 + ["maybe"] * 30, name="answer")
    return tiny(TabularTransformer, epochs=5).fit(X, y), X, y


def dependent_table(n=1000, seed=0):
    """``b = a**2 + small noise``; ``c`` is "big" exactly when ``a > 5``."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 10, n)
    return pd.DataFrame(
        {
            "a": a,
            "b": a**2 + rng.normal(0, 0.5, n),
            "c": np.where(a > 5, "big", "small"),
        }
    )


@pytest.fixture(scope="module")
def dependent():
    X = dependent_table()
    gen = TabularTransformer(epochs=100, width=64, random_state=0).fit(X)
    return gen, X


# ------------------------------------------------------------ conditions
@pytest.mark.parametrize(
    "column, bounds",
    [
        ("age", (30, 40)),  # integers
        ("income", (15000.5, 30000.25)),  # floats, with missing values
        ("children", (1, 2)),  # nullable integers
        ("age", (None, 25)),  # open below
        ("age", (80, 500)),  # beyond the training range: cut to it
    ],
)
def test_range_conditions_are_exact(fitted, column, bounds):
    gen, X, _ = fitted
    X_new, _ = gen.sample(60, conditions={column: bounds})
    values = X_new[column].astype(float)
    low = -np.inf if bounds[0] is None else bounds[0]
    high = np.inf if bounds[1] is None else bounds[1]
    assert values.notna().all()
    assert values.between(low, high).all()
    assert X_new.dtypes.equals(X.dtypes)
    # drawn within the range, not piled up on its bounds
    assert values.nunique() > 1


def test_integer_ranges_give_integers(fitted):
    gen, _, _ = fitted
    X_new, _ = gen.sample(50, conditions={"age": (30.2, 33.7)})
    assert set(X_new["age"]) <= {31, 32, 33}


def test_several_conditions_and_a_label_at_once(fitted):
    gen, _, _ = fitted
    conditions = {"age": (30, 50), "income": (None, 25000.0), "city": "Oslo"}
    X_new, y_new = gen.sample(40, y="maybe", conditions=conditions)
    assert X_new["age"].between(30, 50).all()
    assert (X_new["income"] <= 25000).all()
    assert (X_new["city"] == "Oslo").all()
    assert (y_new == "maybe").all()


def test_conditioning_on_a_later_column_drives_the_others(dependent):
    gen, _ = dependent
    # a is the first column; b = a**2 + noise, so b in (60, 70) means a in
    # about (7.7, 8.4) (a fifth of the rows have a in (7, 9)): the model
    # must infer a from b
    X_new = gen.sample(300, conditions={"b": (60, 70)})
    assert X_new["b"].between(60, 70).all()
    assert X_new["a"].between(7, 9).mean() > 0.8
    assert 7.6 < X_new["a"].median() < 8.5
    assert (X_new["c"] == "big").mean() > 0.9
    X_new = gen.sample(300, conditions={"c": "small", "b": (10, 20)})
    assert X_new["a"].between(2.7, 5).mean() > 0.8


def test_labels_follow_a_range_condition():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.uniform(0, 10, 600), "z": rng.normal(size=600)})
    y = np.where(X["x"] > 5, "high", "low")
    gen = TabularTransformer(epochs=30, width=32, random_state=0).fit(X, y)
    _, y_new = gen.sample(200, conditions={"x": (7, 9)})
    assert (y_new == "high").mean() > 0.9


def test_network_choices_both_condition_exactly():
    X = dependent_table(200)
    gen = tiny(TabularTransformer, network="transformer", heads=2).fit(X)
    X_new = gen.sample(30, conditions={"b": (20, 40), "c": "big"})
    assert X_new["b"].between(20, 40).all() and (X_new["c"] == "big").all()


# --------------------------------------------------------- bad conditions
@pytest.mark.parametrize(
    "bounds, match",
    [
        ((40, 30), "column 'age' has low > high"),
        ((200, 300), r"'age' lies outside the training range \[18, 89\]"),
        ((30.2, 30.8), "no value of column 'age' \\(in steps of 1\\)"),
        ((30, "old"), "'age' takes a range \\(low, high\\) of numbers"),
        ((1, 2, 3), "'age' takes a range"),
        ((np.nan, 3), "'age' takes a range"),
    ],
)
def test_bad_ranges_get_clear_errors(fitted, bounds, match):
    gen, X, _ = fitted
    assert (X["age"].min(), X["age"].max()) == (18, 89)
    with pytest.raises(ValueError, match=match):
        gen.sample(5, conditions={"age": bounds})


def test_a_single_number_asks_for_a_range(fitted):
    gen, _, _ = fitted
    with pytest.raises(
        ValueError, match=r"'age' is numeric.*takes a range \(low, high\)"
    ):
        gen.sample(5, conditions={"age": 30})


@pytest.mark.parametrize("cls", [TabularVAE, TabularGAN])
def test_other_models_refuse_ranges_clearly(cls):
    X = dependent_table(60)
    gen = tiny(cls).fit(X)
    with pytest.raises(ValueError, match=f"{cls.__name__} cannot condition on a nu"):
        gen.sample(5, conditions={"a": (1, 2)})


def test_width_must_split_into_heads():
    with pytest.raises(ValueError, match="width=30 must be a multiple of heads=4"):
        TabularTransformer(network="transformer", width=30, epochs=1).fit(
            dependent_table(50)
        )


# --------------------------------------------------------------- log_prob
def test_log_prob_is_higher_for_real_rows_than_for_shuffled_ones(dependent):
    gen, X = dependent
    real = gen.log_prob(X)
    rng = np.random.default_rng(1)
    shuffled = X.apply(lambda column: rng.permutation(column.to_numpy()))
    fake = gen.log_prob(shuffled)
    assert real.shape == fake.shape == (len(X),)
    assert np.isfinite(real).all()
    assert np.median(real) > np.median(fake) + 2


def test_log_prob_with_labels(fitted):
    gen, X, y = fitted
    marginal = gen.log_prob(X)
    conditional = gen.log_prob(X, y)
    assert marginal.shape == conditional.shape == (len(X),)
    assert np.isfinite(marginal).all() and np.isfinite(conditional).all()
    # log p(x) = log sum_k p(k) p(x | k) >= log p(y) + log p(x | y)
    prior = y.map(y.value_counts(normalize=True)).to_numpy()
    assert (marginal >= np.log(prior) + conditional - 1e-6).all()


def test_log_prob_of_values_outside_the_training_range(dependent):
    gen, X = dependent
    odd = X.head(3).assign(a=[5.0, 1e6, 5.0])
    assert np.isneginf(gen.log_prob(odd)[1])
    assert np.isfinite(gen.log_prob(odd)[[0, 2]]).all()


def test_log_prob_needs_the_continuous_target(table):
    y = np.random.default_rng(0).normal(size=len(table))
    gen = tiny(TabularTransformer).fit(table, y)
    assert np.isfinite(gen.log_prob(table, y)).all()
    with pytest.raises(ValueError, match="y is required"):
        gen.log_prob(table)


# ------------------------------------------------------------ small tables
def test_a_tiny_table_is_learnt_not_memorised():
    # wine: 124 training rows, 13 numbers of 32 quantile bins, 4 rows a bin.
    # One-hot targets were memorised from the first step (early stopping kept
    # the untrained model, no better than a uniform draw of every token).
    X, y = load_wine(return_X_y=True, as_frame=True)
    X, X_test, y, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    gen = TabularTransformer(random_state=0).fit(X, y)
    held_out = [record["held_out"] for record in gen.history_]
    assert np.argmin(held_out) > 5
    tokens = gen.module_.tokens
    rows = torch.as_tensor(gen.encoder_.transform(X_test))
    _, within = tokens.tokenise(rows, within=True)
    uniform = within.numpy() - np.log(tokens.sizes).sum()
    log_prob = gen.log_prob(X_test, y_test)
    seen = np.isfinite(log_prob)  # not beyond the training range
    assert (log_prob - uniform)[seen].mean() > 1.5  # nats per row


def test_smoothed_targets_spread_over_ordered_bins_only(fitted):
    gen, X, _ = fitted
    tokens = gen.module_.tokens
    rows = torch.as_tensor(gen.encoder_.transform(X), dtype=torch.float32)
    batch = tokens.tokenise(rows)
    width = torch.full((tokens.n_columns,), 2.0)
    columns = torch.arange(tokens.n_columns)
    target = tokens.soft_targets(width)[columns, batch]  # a batch's: a lookup
    assert torch.allclose(target.sum(2), torch.ones(batch.shape))
    assert (target[~tokens.valid.expand_as(target)] == 0).all()
    picked = target.gather(2, batch.unsqueeze(2)).squeeze(2)
    ordered = tokens.rank.gather(1, batch.T).T >= 0
    # categories, exact points and missing values keep a one-hot target
    assert (picked[~ordered] == 1).all()
    # an ordered bin keeps the most, and its neighbours get some
    assert ((picked[ordered] < 1) & (picked[ordered] == target.amax(2)[ordered])).all()
    assert (target[ordered.unsqueeze(2) & (tokens.rank < 0)] == 0).all()
    # a width of 0 is refused by the parameter, a tiny one is one-hot
    sharp = tokens.soft_targets(torch.full_like(width, 1e-3))[columns, batch]
    assert torch.allclose(sharp, F.one_hot(batch, tokens.max_size).float())


@pytest.mark.parametrize("smoothing", [0, 0.5, "auto"])
def test_smoothing_choices_fit(smoothing):
    X = dependent_table(200)
    gen = tiny(TabularTransformer, smoothing=smoothing).fit(X)
    assert gen.sample(5).shape == (5, 3)


# ------------------------------------------------------- within-bin draws
def _skewed_tokens(n=4000, seed=0):
    """The tokens of a long-tailed continuous column and a rounded one."""
    from augment.tabular.encoder import TableEncoder
    from augment.tabular.transformer import _Tokens

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tail": rng.lognormal(0, 1, n),
            "cents": np.round(rng.lognormal(5, 1, n), 2),
        }
    )
    encoder = TableEncoder().fit(X)
    rows = torch.as_tensor(encoder.transform(X))
    return X, encoder, _Tokens(encoder.columns_, rows, 32), rows


def test_numbers_drawn_within_their_bins_keep_the_training_tails():
    X, encoder, tokens, rows = _skewed_tokens()
    assert all(k.shape[1] == 9 for k in tokens.knots.values())  # 8 segments
    drawn = tokens.tokenise(rows)

    def redrawn(knots):
        tokens.knots = knots
        generator = torch.Generator().manual_seed(0)
        out = tokens.detokenise(drawn, generator, {})
        return encoder.inverse_transform(out.double().numpy())

    quantiles = redrawn(tokens.knots)
    uniform = redrawn(None)
    for column in X:
        real = X[column].to_numpy()
        band = np.quantile(real, [0.005, 0.995])
        outside = {
            name: np.mean((v[column] < band[0]) | (v[column] > band[1]))
            for name, v in (("quantiles", quantiles), ("uniform", uniform))
        }
        # the real share is 1%: the uniform draw fills the outer bins' empty
        # tails, the within-bin quantiles do not
        assert outside["quantiles"] < 0.015 < outside["uniform"], (column, outside)
        assert quantiles[column].max() <= real.max()
    # a rounded column keeps its grid
    cents = quantiles["cents"].to_numpy()
    np.testing.assert_allclose(cents, np.round(cents, 2))


def test_within_bin_densities_integrate_to_one():
    X, encoder, tokens, rows = _skewed_tokens(n=2000)
    j = tokens.index("tail")
    lo, hi, exact, _ = tokens.bins(j)
    for b in torch.nonzero(~exact).flatten()[[0, 5, -1]]:
        x = torch.linspace(float(lo[b]), float(hi[b]), 20001, dtype=torch.float64)
        density = tokens._log_density(j, torch.full_like(x, b, dtype=torch.long), x)
        area = torch.trapezoid(density.exp(), x)
        assert abs(float(area) - 1) < 1e-2
    # a rounded column: the probabilities of a bin's grid values sum to one
    j = tokens.index("cents")
    lo, hi, exact, _ = tokens.bins(j)
    b = int(torch.nonzero(~exact).flatten()[-3])
    grid = (
        torch.arange(
            np.ceil(float(lo[b]) * 100), np.floor(float(hi[b]) * 100) + 1
        ).double()
        / 100
    )
    p = tokens._log_density(j, torch.full_like(grid, b, dtype=torch.long), grid)
    assert abs(float(p.exp().sum()) - 1) < 1e-6


def test_range_conditions_cut_the_within_bin_distribution():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.lognormal(0, 1, 3000), "z": rng.normal(size=3000)})
    gen = tiny(TabularTransformer, epochs=2).fit(X)
    assert gen._bin_knots[0].shape[1] > 2  # quantiles inside the bins
    top = float(np.quantile(X["x"], 0.99))
    for bounds in ((0.5, 0.52), (top, None), (None, 0.1)):
        X_new = gen.sample(200, conditions={"x": bounds}, random_state=0)
        low = -np.inf if bounds[0] is None else bounds[0]
        high = np.inf if bounds[1] is None else bounds[1]
        assert X_new["x"].between(low, high).all(), bounds
        assert X_new["x"].nunique() > 100  # drawn, not piled up on a bound
    # the class probabilities of a range: the share of the within-bin
    # distribution inside it, not of the bin's width
    tokens = gen.module_.tokens
    from augment.tabular.conditioning import RangeCondition

    share = tokens.share_in_range(0, RangeCondition("x", top, float(X["x"].max())))
    assert 0 < share.max() <= 1


def test_a_saved_model_keeps_its_within_bin_quantiles(tmp_path):
    from augment import load

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.lognormal(0, 1, 2000), "z": rng.normal(size=2000)})
    gen = tiny(TabularTransformer, epochs=2, random_state=0).fit(X)
    path = gen.save(tmp_path / "model.augment")
    loaded = load(path)
    for j, knots in gen._bin_knots.items():
        np.testing.assert_array_equal(loaded._bin_knots[j], knots)
    pd.testing.assert_frame_equal(
        loaded.sample(300, random_state=1), gen.sample(300, random_state=1)
    )
    np.testing.assert_allclose(loaded.log_prob(X[:50]), gen.log_prob(X[:50]))
    # a file from before the quantiles (none stored) loads, drawing uniformly
    del loaded._bin_knots
    loaded._build_modules(loaded._init_generator())
    assert loaded.module_.tokens.knots is None


def test_one_mode_encoding_gives_the_tokens_of_a_mixture(monkeypatch):
    # the tokens read a number's value alone: the encoder's mixture modes
    # (here two, far apart) would change none of them, only the fit's time
    rng = np.random.default_rng(0)
    X = mixed_table(300).assign(
        two=np.concatenate([rng.normal(-50, 1, 150), rng.normal(50, 1, 150)])
    )
    one = tiny(TabularTransformer, epochs=1, random_state=0).fit(X)
    assert all(
        len(spec.weights) <= 1
        for spec in one.encoder_.columns_
        if spec.kind != "categorical"
    )
    monkeypatch.setattr(TabularTransformer, "_encoder_modes", 10)
    mixture = tiny(TabularTransformer, epochs=1, random_state=0).fit(X)
    assert max(len(s.weights) for s in mixture.encoder_.columns_ if s.name == "two") > 1
    tokens = [
        gen.module_.tokens.tokenise(
            torch.as_tensor(gen.encoder_.transform(gen._free_columns(X)))
        )
        for gen in (one, mixture)
    ]
    torch.testing.assert_close(tokens[0], tokens[1], rtol=0, atol=0)
    # the same bins, within float32's precision of a one-mode encoding
    for j, (lo, hi, exact, within) in mixture._token_bins.items():
        spec = mixture.encoder_.columns_[j]
        scale = 1e-6 * (spec.high - spec.low)
        np.testing.assert_allclose(one._token_bins[j][0], lo, rtol=0, atol=scale)
        np.testing.assert_allclose(one._token_bins[j][1], hi, rtol=0, atol=scale)
        np.testing.assert_array_equal(one._token_bins[j][2], exact)
        np.testing.assert_allclose(one._token_bins[j][3], within, rtol=0, atol=1e-3)

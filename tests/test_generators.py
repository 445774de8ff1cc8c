"""Behaviour every tabular generator shares (BaseGenerator), on tiny settings."""

import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from conftest import tiny
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import augment


# ------------------------------------------------------------------ sampling
def test_sample_unlabelled_returns_table_like_training(generator_class, table):
    gen = tiny(generator_class).fit(table)
    synthetic = gen.sample(40)
    assert isinstance(synthetic, pd.DataFrame)
    assert list(synthetic.columns) == list(table.columns)
    assert synthetic.dtypes.equals(table.dtypes)
    assert len(synthetic) == 40
    for column in ["plan", "city", "tier"]:
        assert set(synthetic[column].dropna()) <= set(table[column].dropna())


def test_sample_zero_rows(generator_class, labelled):
    X, y = labelled
    X_new, y_new = tiny(generator_class).fit(X, y).sample(0)
    assert X_new.shape == (0, X.shape[1]) and X_new.dtypes.equals(X.dtypes)
    assert len(y_new) == 0


def test_exact_counts_for_scalar_and_per_row_labels(generator_class, labelled):
    X, y = labelled
    gen = tiny(generator_class).fit(X, y)
    X_new, y_new = gen.sample(37, y="maybe")
    assert len(X_new) == 37 and set(y_new) == {"maybe"}
    assert isinstance(y_new, pd.Series) and y_new.name == "answer"
    wanted = np.array(["yes"] * 5 + ["no"] * 3 + ["maybe"] * 2)
    X_new, y_new = gen.sample(10, y=wanted)
    np.testing.assert_array_equal(y_new, wanted)
    assert len(X_new) == 10


def test_default_labels_follow_training_distribution(generator_class, labelled):
    X, y = labelled
    _, y_new = tiny(generator_class).fit(X, y).sample(3000)
    shares = pd.Series(y_new).value_counts(normalize=True)
    expected = y.value_counts(normalize=True)
    np.testing.assert_allclose(shares[expected.index], expected, atol=0.03)


def test_same_random_state_same_samples(generator_class, labelled):
    X, y = labelled
    a = tiny(generator_class, random_state=7).fit(X, y)
    b = tiny(generator_class, random_state=7).fit(X, y)
    pd.testing.assert_frame_equal(a.sample(50)[0], b.sample(50)[0])
    # successive draws continue the stream rather than repeating it
    assert not a.sample(50)[0].equals(a.sample(50)[0])
    c = tiny(generator_class, random_state=8).fit(X, y)
    assert not c.sample(50)[0].equals(
        tiny(generator_class, random_state=7).fit(X, y).sample(50)[0]
    )


def test_numpy_in_numpy_out(generator_class):
    X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    X = X.astype(np.float32)
    gen = tiny(generator_class).fit(X, y)
    X_new, y_new = gen.sample(20, y=1)
    assert isinstance(X_new, np.ndarray) and X_new.dtype == np.float32
    assert X_new.shape == (20, 4)
    assert not hasattr(gen, "feature_names_in_")


def test_continuous_target_is_generated_jointly(generator_class, table):
    y = table["age"] * 1.5 + 3.0
    gen = tiny(generator_class).fit(table.drop(columns="age"), y)
    X_new, y_new = gen.sample(25)
    assert len(X_new) == len(y_new) == 25
    assert y_new.dtype == np.float64
    assert y_new.min() >= y.min() and y_new.max() <= y.max()
    with pytest.raises(ValueError, match="continuous target"):
        gen.sample(5, y=1.0)


def test_training_keeps_a_loss_history(generator_class, labelled):
    X, y = labelled
    gen = tiny(generator_class, epochs=4).fit(X, y)
    assert len(gen.history_) == 4
    assert all(np.isfinite(v) for record in gen.history_ for v in record.values())


def test_verbose_shows_progress(generator_class, labelled, capsys):
    X, y = labelled
    tiny(generator_class, verbose=1).fit(X, y)
    assert generator_class.__name__ in capsys.readouterr().err


# -------------------------------------------------------------- fit_resample
@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("auto", {"no": 90, "yes": 90, "maybe": 90}),
        ("minority", {"no": 90, "yes": 40, "maybe": 90}),
        ("not majority", {"no": 90, "yes": 90, "maybe": 90}),
        ("all", {"no": 90, "yes": 90, "maybe": 90}),
        ({"maybe": 60}, {"no": 90, "yes": 40, "maybe": 60}),
        (lambda y: {"yes": 50}, {"no": 90, "yes": 50, "maybe": 20}),
    ],
    ids=["auto", "minority", "not majority", "all", "dict", "callable"],
)
def test_fit_resample_sampling_strategy(generator_class, labelled, strategy, expected):
    X, y = labelled
    X_res, y_res = tiny(generator_class, sampling_strategy=strategy).fit_resample(X, y)
    assert dict(Counter(y_res)) == expected
    assert len(X_res) == len(y_res)
    # the real rows come first, unchanged
    pd.testing.assert_frame_equal(X_res.iloc[: len(X)], X)
    np.testing.assert_array_equal(y_res.iloc[: len(y)], y)
    assert isinstance(y_res, pd.Series) and y_res.name == "answer"


def test_fit_resample_float_strategy_binary(generator_class, labelled):
    X, y = labelled
    keep = y != "maybe"
    X_res, y_res = tiny(generator_class, sampling_strategy=0.8).fit_resample(
        X[keep], y[keep]
    )
    assert Counter(y_res) == {"no": 90, "yes": 72}


def test_enlarge_after_balancing_keeps_proportions(generator_class, labelled):
    X, y = labelled
    X_res, y_res = tiny(generator_class, enlarge=3.0).fit_resample(X, y)
    assert len(y_res) == 3 * len(y)
    assert Counter(y_res) == {"no": 150, "yes": 150, "maybe": 150}
    X_res, y_res = tiny(
        generator_class, sampling_strategy={"maybe": 20}, enlarge=2.0
    ).fit_resample(X, y)
    assert Counter(y_res) == {"no": 180, "yes": 80, "maybe": 40}


def test_enlarge_regression_and_unlabelled(generator_class, table):
    X = table.drop(columns="age")
    y = table["age"] + np.random.default_rng(0).random(len(table))
    X_res, y_res = tiny(generator_class, enlarge=1.5).fit_resample(X, y)
    assert len(X_res) == len(y_res) == 225
    X_only = tiny(generator_class, enlarge=2).fit_resample(table)
    assert len(X_only) == 300
    with pytest.raises(ValueError, match="enlarge"):
        tiny(generator_class).fit_resample(X, y)


def test_fit_resample_preserves_formats(generator_class):
    X, y = make_classification(
        n_samples=100,
        n_features=3,
        n_informative=2,
        n_redundant=0,
        weights=[0.8],
        random_state=0,
    )
    X_res, y_res = tiny(generator_class).fit_resample(X.tolist(), y.tolist())
    assert isinstance(X_res, list) and isinstance(y_res, list)
    assert Counter(y_res)[0] == Counter(y_res)[1]
    y_frame = pd.DataFrame({"target": y.astype(np.int32)})
    X_res, y_res = tiny(generator_class).fit_resample(
        pd.DataFrame(X, columns=list("abc")), y_frame
    )
    assert isinstance(y_res, pd.DataFrame) and y_res["target"].dtype == np.int32


def test_does_not_modify_callers_data(generator_class, labelled):
    X, y = labelled
    X_before, y_before = X.copy(), y.copy()
    tiny(generator_class).fit_resample(X, y)
    pd.testing.assert_frame_equal(X, X_before)
    pd.testing.assert_series_equal(y, y_before)


# ------------------------------------------------------------ sklearn API
def test_clone_params_and_pickle(generator_class, labelled):
    X, y = labelled
    gen = tiny(generator_class, epochs=2)
    assert clone(gen).get_params() == gen.get_params()
    gen.set_params(epochs=3)
    assert gen.epochs == 3
    gen.fit(X, y)
    restored = pickle.loads(pickle.dumps(gen))
    pd.testing.assert_frame_equal(
        restored.sample(20, y="yes")[0], gen.sample(20, y="yes")[0]
    )


def _pipeline(generator):
    numeric = ["income", "age"]
    encode = make_column_transformer(
        (StandardScaler(), numeric),
        (OneHotEncoder(handle_unknown="ignore"), ["plan", "tier"]),
    )
    return make_pipeline(generator, encode, LogisticRegression(max_iter=500))


def test_pipeline_cross_validate_and_grid_search(generator_class, labelled):
    X, y = labelled
    X = X[["income", "age", "plan", "tier"]].fillna({"income": 1.0, "plan": "basic"})
    pipe = _pipeline(tiny(generator_class))
    scores = cross_validate(pipe, X, y, cv=3)
    assert np.all(np.isfinite(scores["test_score"]))
    step = type(pipe.steps[0][1]).__name__.lower()
    search = GridSearchCV(pipe, {f"{step}__epochs": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_[f"{step}__epochs"] in (1, 2)
    # prediction never sees synthetic rows: predict returns one label per row
    assert len(search.predict(X)) == len(X)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "n_samples, error, match",
    [
        (-1, ValueError, "n_samples must be >= 0"),
        (2.5, TypeError, "n_samples must be an int"),
    ],
)
def test_sample_rejects_bad_counts(generator_class, labelled, n_samples, error, match):
    X, y = labelled
    gen = tiny(generator_class).fit(X, y)
    with pytest.raises(error, match=match):
        gen.sample(n_samples)


def test_sample_rejects_unknown_labels_and_wrong_types(generator_class):
    X = pd.DataFrame({"a": np.arange(40.0)})
    y = np.array(["1", "2"] * 20)
    gen = tiny(generator_class).fit(X, y)
    with pytest.raises(ValueError, match="'3' is not a training label"):
        gen.sample(5, y="3")
    with pytest.raises(ValueError, match="int given, the training labels are str"):
        gen.sample(5, y=1)
    with pytest.raises(ValueError, match="one label per row"):
        gen.sample(5, y=["1", "2"])


def test_unlabelled_generator_rejects_y(generator_class, table):
    gen = tiny(generator_class).fit(table)
    with pytest.raises(ValueError, match="fitted with no labels"):
        gen.sample(5, y="a")


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda X, y: (X.iloc[:0], y.iloc[:0]), ValueError, "no rows"),
        (lambda X, y: (X.assign(empty=np.nan), y), ValueError, "'empty'.*only missing"),
        (lambda X, y: (X, y.where(y != "yes")), ValueError, "y contains NaN"),
        (lambda X, y: (X.assign(income=np.inf), y), ValueError, "'income'.*infinite"),
        (lambda X, y: (X.assign(plan=[1, "a"] * 75), y), TypeError, "'plan' mixes"),
        (lambda X, y: (X, y.iloc[:-1]), ValueError, "y has 149 rows but X has 150"),
    ],
    ids=["empty", "all-nan-column", "nan-in-y", "inf", "mixed-types", "length"],
)
def test_bad_input_gets_a_clear_error(generator_class, labelled, make, error, match):
    X, y = make(*labelled)
    with pytest.raises(error, match=match):
        tiny(generator_class).fit(X, y)


def test_single_row_class_warns(generator_class, labelled):
    X, y = labelled
    y = y.copy()
    y.iloc[0] = "lonely"
    with pytest.warns(UserWarning, match="'lonely'.*single row"):
        gen = tiny(generator_class).fit(X, y)
    assert len(gen.sample(3, y="lonely")[0]) == 3


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(enlarge=0.5), "enlarge"),
        (dict(epochs=0), "epochs"),
        (dict(sampling_strategy="most"), "sampling_strategy"),
        (dict(batch_size=1), "batch_size"),
    ],
)
def test_out_of_range_parameters(generator_class, labelled, params, match):
    X, y = labelled
    with pytest.raises(ValueError, match=match):
        tiny(generator_class, **params).fit_resample(X, y)


def test_bad_device_is_named(generator_class, labelled):
    X, y = labelled
    with pytest.raises(ValueError, match="device='gpu7'"):
        tiny(generator_class, device="gpu7").fit(X, y)


def test_one_class_cannot_be_balanced(generator_class, table):
    with pytest.raises(ValueError, match="class"):
        tiny(generator_class).fit_resample(table, ["a"] * len(table))


def test_point_masses_are_reproduced(generator_class):
    """About 40% of a column exactly 5.0 inside its range (the encoder's point mass):
    every model samples that exact value at about its training share, with
    no per-model code; a count's values come back with their shares."""
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame(
        {
            "debt": np.where(rng.random(n) < 0.4, 5.0, rng.normal(5, 3, n)),
            "kids": rng.choice([0, 1, 2], n, p=[0.6, 0.3, 0.1]),
        }
    )
    generator = tiny(generator_class, epochs=30).fit(X)
    sample = generator.sample(2000)
    share = (X["debt"] == 5.0).mean()  # 0.36
    assert (sample["debt"] == 5.0).mean() == pytest.approx(share, abs=0.1)
    shares = sample["kids"].value_counts(normalize=True)
    assert set(shares.index) == {0, 1, 2}
    assert shares[0] == pytest.approx((X["kids"] == 0).mean(), abs=0.1)


def test_derived_sums_stay_in_their_training_range(generator_class, tmp_path):
    """``total = a + b`` with the rows' totals between 20 and 60 while ``a``
    and ``b`` range over 0 to 50: drawn alone, a quarter of the sums fall
    outside; every model draws those rows again (up to four times: a row
    of these barely trained models misses in all with a chance of about
    0.25 ** 4), and a range of a seeded stream is still the same as in the
    whole, and after a model file round trip."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 51, (2, 1500))
    inside = (a + b >= 20) & (a + b <= 60)
    X = pd.DataFrame({"a": a[inside][:300], "b": b[inside][:300]})
    X["total"] = X["a"] + X["b"]
    y = rng.choice(["u", "v"], len(X))
    generator = tiny(generator_class).fit(X, y)
    assert generator._rules.bounds == {"total": (20, 60)}
    sample, _ = generator.sample(600, random_state=0)
    assert sample["total"].between(20, 60).mean() >= 0.98
    assert (sample["total"] == sample["a"] + sample["b"]).all()
    part, _ = generator.sample(200, random_state=0, start=250)
    pd.testing.assert_frame_equal(part, sample.iloc[250:450].reset_index(drop=True))
    loaded = augment.load(generator.save(tmp_path / "model.augment"))
    assert loaded._rules.bounds == {"total": (20, 60)}
    pd.testing.assert_frame_equal(loaded.sample(600, random_state=0)[0], sample)
    generator._rules.bounds = {}  # without them, sums fall outside
    unbounded, _ = generator.sample(600, random_state=0)
    assert unbounded["total"].between(20, 60).mean() < 0.9

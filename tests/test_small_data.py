"""AugmentedClassifier: the amount of synthetic rows chosen by inner
cross-validation, its cost reported, and bad input."""

import numpy as np
import pandas as pd
import pytest
from conftest import tiny
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import InvalidParameterError

from augment import AugmentedClassifier, TabularVAE


def data(n=60, weights=(0.75,), seed=0):
    X, y = make_classification(
        n,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        weights=list(weights),
        random_state=seed,
    )
    return pd.DataFrame(X, columns=list("abcd")), pd.Series(y, name="label")


def model(estimator=None, **params):
    params = {"cv": 3, **params}
    return AugmentedClassifier(
        estimator or LogisticRegression(), tiny(TabularVAE), **params
    )


def test_search_reports_every_amount_and_its_cost():
    X, y = data()
    fitted = model(amounts=[0, "balance", 2.0], synthetic_weights=[1.0]).fit(X, y)
    results = pd.DataFrame(fitted.cv_results_)
    assert results["amount"].tolist() == [0, "balance", 2.0]
    assert {"split0_test_score", "split2_test_score", "rank_test_score"} <= set(results)
    # one generator fit per fold, shared by the non-zero amounts; none for 0
    times = results["mean_generator_fit_time"]
    assert times[0] == 0 and times[1] == times[2] > 0
    # in the training folds (40 rows, 30 of class 0): balance adds 20, x2 40
    assert results["n_synthetic"].tolist() == [0, 20, 40]
    # the chosen amount beats 0 in two of the three folds at least, by more
    # than min_t standard errors
    splits = results.filter(like="split").to_numpy()
    gains = splits - splits[0]
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 for amount 0
        t = gains.mean(1) / (gains.std(1, ddof=1) / np.sqrt(3))
    clears = (gains.mean(1) > 0) & ((gains > 0).sum(1) >= 2) & (t > fitted.min_t)
    best = np.argmax(np.where(clears, results["mean_test_score"], -1))
    assert fitted.amount_ == (results["amount"][best] if clears.any() else 0)
    assert fitted.search_seconds_ > 0


def results(**amounts):
    splits = np.array(list(amounts.values()))
    return {
        "amount": list(amounts),
        "weight": np.ones(len(amounts)),
        "mean_test_score": splits.mean(axis=1),
        **{f"split{k}_test_score": splits[:, k] for k in range(splits.shape[1])},
    }


@pytest.mark.parametrize(
    "params, chosen",
    [
        # balance: the best mean (+0.2 over none), won in two folds of four;
        # x2: +0.1, won in three
        (dict(win_share=0, min_t=0), "balance"),
        (dict(win_share=0.4, min_t=0), "balance"),
        (dict(win_share=0.4, min_t=2), 0),  # t statistics 1.15 and 1
        (dict(min_t=2), 0),  # x2's gains (0.2, 0.2, 0.2, -0.2) are under 2 errors
        (dict(), 2.0),  # the default min_t=0.5: x2 clears it (t = 1)
        (dict(min_t=0), 2.0),
        (dict(win_share=0.75, min_t=0), 0),
        (dict(margin=0.15, min_t=0), 0),
        (dict(margin=0.15, win_share=0, min_t=0), "balance"),
    ],
)
def test_an_amount_must_beat_none_in_most_folds(params, chosen):
    found = results(
        none=[0.5, 0.5, 0.5, 0.5],
        balance=[1.0, 1.0, 0.4, 0.4],
        double=[0.7, 0.7, 0.7, 0.3],
    )
    found["amount"] = [0, "balance", 2.0]
    assert model(**params)._choose(found)[0] == chosen


@pytest.mark.parametrize("min_t, chosen", [(0, "balance"), (2, 0), (5, 0)])
def test_the_gain_must_exceed_min_t_standard_errors(min_t, chosen):
    # gains 0.1, 0.1, 0.1, 0.1, -0.2: mean 0.04, standard error 0.06 (t = 0.67)
    found = results(
        none=[0.5, 0.5, 0.5, 0.5, 0.5],
        balance=[0.6, 0.6, 0.6, 0.6, 0.3],
    )
    found["amount"] = [0, "balance"]
    assert model(min_t=min_t)._choose(found)[0] == chosen
    # steady gains clear any threshold (no spread: an infinite t statistic)
    steady = results(none=[0.5, 0.5, 0.5], balance=[0.6, 0.6, 0.6])
    steady["amount"] = [0, "balance"]
    assert model(min_t=min_t)._choose(steady)[0] == "balance"


def test_the_weight_of_the_chosen_candidate_comes_with_it():
    found = results(
        none=[0.5, 0.5, 0.5],
        full=[0.6, 0.6, 0.7],
        half=[0.7, 0.7, 0.7],
    )
    found["amount"] = [0, "balance", "balance"]
    found["weight"] = np.array([np.nan, 1.0, 0.5])
    assert model()._choose(found) == ("balance", 0.5)


def test_chosen_amount_is_what_the_final_classifier_learns():
    X, y = data()
    # without 0 among the amounts, augmentation is forced
    fitted = model(DummyClassifier(), amounts=["balance"]).fit(X, y)
    assert fitted.amount_ == "balance"
    assert fitted.n_synthetic_ == 30  # 45 against 15 rows
    np.testing.assert_allclose(fitted.estimator_.class_prior_, [0.5, 0.5])
    assert fitted.generator_.classes_.tolist() == [0, 1]


@pytest.mark.parametrize("pipeline", [False, True])
def test_synthetic_rows_weigh_what_was_chosen(pipeline):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data()
    estimator = DummyClassifier()
    if pipeline:  # the weights go to the final step
        estimator = make_pipeline(StandardScaler(), estimator)
    fitted = model(estimator, amounts=["balance"], synthetic_weights=[0.5]).fit(X, y)
    assert fitted.weight_ == 0.5 and fitted.n_synthetic_ == 30
    # 45 rows of class 0 against 15 real and 30 synthetic ones of class 1 at 0.5
    final = fitted.estimator_[-1] if pipeline else fitted.estimator_
    np.testing.assert_allclose(final.class_prior_, [0.6, 0.4])
    results = pd.DataFrame(fitted.cv_results_)
    assert results["amount"].tolist() == ["balance"]
    assert results["weight"].tolist() == [0.5]


def test_every_amount_is_tried_with_every_weight():
    X, y = data()
    # the default candidates: none, and balancing at weights 1 and 0.5
    results = model().fit(X, y).cv_results_
    assert list(results["amount"]) == [0, "balance", "balance"]
    np.testing.assert_array_equal(results["weight"], [np.nan, 1, 0.5])
    fitted = model(amounts=[0, "balance", 2.0], synthetic_weights=[1.0, 0.25])
    fitted = fitted.fit(X, y)
    results = pd.DataFrame(fitted.cv_results_)
    assert results["amount"].tolist() == [0, "balance", "balance", 2.0, 2.0]
    np.testing.assert_array_equal(results["weight"], [np.nan, 1, 0.25, 1, 0.25])
    # the rows of an amount are sampled once per fold, whatever their weight
    assert results["n_synthetic"].tolist() == [0, 20, 20, 40, 40]
    assert fitted.weight_ in (None, 1.0, 0.25)
    assert (fitted.weight_ is None) == (fitted.amount_ == 0)


def test_weights_through_metadata_routing():
    from sklearn import config_context
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data()
    with config_context(enable_metadata_routing=True):
        final = DummyClassifier().set_fit_request(sample_weight=True)
        scale = StandardScaler().set_fit_request(sample_weight=False)
        estimator = make_pipeline(scale, final)
        fitted = model(estimator, amounts=["balance"], synthetic_weights=[0.5])
        fitted.fit(X, y)
    np.testing.assert_allclose(fitted.estimator_[-1].class_prior_, [0.6, 0.4])


def test_weights_auto_and_estimators_without_sample_weight():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data()
    assert model(amounts=[0]).fit(X, y).synthetic_weights_ == [1.0, 0.5]
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier())
    assert model(knn, amounts=[0]).fit(X, y).synthetic_weights_ == [1.0]
    assert model(knn, amounts=[0], synthetic_weights=[1]).fit(X, y)
    with pytest.raises(ValueError, match="KNeighborsClassifier.fit does not"):
        model(knn, synthetic_weights=[1.0, 0.5]).fit(X, y)


@pytest.mark.parametrize("weights", [[0], [-1.0], [], ["half"], [True], [np.nan]])
def test_bad_synthetic_weights(weights):
    X, y = data()
    with pytest.raises(ValueError, match="synthetic_weights must"):
        model(synthetic_weights=weights).fit(X, y)


@pytest.mark.parametrize("params", [dict(min_t=-1), dict(synthetic_weights="all")])
def test_bad_rule_parameters(params):
    X, y = data()
    with pytest.raises(InvalidParameterError):
        model(**params).fit(X, y)


def test_no_augmentation_when_it_does_not_beat_real_rows_by_the_margin():
    X, y = data()
    fitted = model(DummyClassifier(), margin=1.0).fit(X, y)
    assert fitted.amount_ == 0 and fitted.generator_ is None
    assert fitted.n_synthetic_ == 0 and fitted.weight_ is None
    np.testing.assert_allclose(fitted.estimator_.class_prior_, [0.75, 0.25])


def test_amount_zero_alone_fits_no_generator():
    X, y = data()
    fitted = model(amounts=[0]).fit(X, y)
    assert fitted.cv_results_ is None and fitted.generator_ is None
    plain = LogisticRegression().fit(X, y)
    np.testing.assert_array_equal(fitted.predict(X), plain.predict(X))


def test_same_settings_same_search():
    X, y = data()
    a = model().fit(X, y).cv_results_["mean_test_score"]
    b = model().fit(X, y).cv_results_["mean_test_score"]
    np.testing.assert_array_equal(a, b)


def test_mixed_table_through_a_pipeline(labelled):
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = labelled
    X = X[["income", "age", "member", "plan"]]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan", "member"]),
        (make_pipeline(SimpleImputer(), StandardScaler()), ["income", "age"]),
    )
    fitted = model(make_pipeline(encode, LogisticRegression())).fit(X, y)
    assert set(fitted.predict(X)) <= {"no", "yes", "maybe"}
    assert fitted.predict_proba(X).shape == (150, 3)
    assert X.columns.tolist() == ["income", "age", "member", "plan"]  # untouched


# ---------------------------------------------------------------- bad input
def test_too_few_rows_per_class_for_the_folds_warns_and_adds_nothing():
    X, y = data(20)
    y[:] = [1, 1] + [0] * 18  # three folds: one training fold has a single 1
    with pytest.warns(UserWarning, match="two rows of every class"):
        fitted = model(cv=3).fit(X, y)
    assert fitted.amount_ == 0 and fitted.cv_results_ is None


def test_an_estimator_that_does_not_fit_raises_its_own_error_first():
    X, y = data()
    generator = tiny(TabularVAE)
    broken = AugmentedClassifier(LogisticRegression(C=-1.0), generator, cv=3)
    with pytest.raises(InvalidParameterError, match="'C' parameter"):
        broken.fit(X, y)
    assert not hasattr(broken, "generator_")
    assert not hasattr(generator, "history_")  # the generator never trained


@pytest.mark.parametrize("cv", [1, 0, -2, 2.5, "five"])
def test_cv_out_of_range(cv):
    X, y = data()
    with pytest.raises(InvalidParameterError, match="'cv' parameter"):
        model(cv=cv).fit(X, y)


def test_more_folds_than_rows():
    X, y = data()
    with pytest.raises(ValueError, match="n_splits=100"):
        model(cv=StratifiedKFold(100)).fit(X, y)


@pytest.mark.parametrize("amounts", [[0.5], ["twice"], [], [True], [-1]])
def test_bad_amounts(amounts):
    X, y = data()
    with pytest.raises(ValueError, match="amounts must"):
        model(amounts=amounts).fit(X, y)


def test_continuous_target_and_missing_target():
    X, y = data()
    with pytest.raises(ValueError, match="Unknown label type"):
        model().fit(X, y + np.linspace(0, 0.5, len(y)))
    with pytest.raises(ValueError, match="requires y"):
        model().fit(X, None)


# ------------------------------------------------- enlarge="auto" of a generator
def test_enlarge_auto_of_a_generator_adds_the_chosen_amount():
    X, y = data()
    generator = tiny(TabularVAE, enlarge="auto")
    X_res, y_res = generator.fit_resample(X, y)
    search = pd.DataFrame(generator.enlarge_search_)
    assert search["amount"].tolist() == [0, "balance", 2.0]
    added = {0: 0, None: 30, 2.0: 60}[generator.enlarge_]
    assert len(X_res) == len(y_res) == 60 + added
    pd.testing.assert_frame_equal(X_res[:60], X)  # the real rows first, unchanged
    # a later fit with a fixed amount forgets the search
    generator.set_params(enlarge=None).fit_resample(X, y)
    assert not hasattr(generator, "enlarge_search_")


def test_enlarge_auto_needs_class_labels():
    X, y = data()
    with pytest.raises(ValueError, match="no classes for enlarge='auto'"):
        tiny(TabularVAE, enlarge="auto").fit_resample(X, y + np.linspace(0, 1, 60))


def test_enlarge_auto_is_for_tables_only():
    from augment import ImageVAE

    images = np.random.default_rng(0).random((20, 1, 4, 4))
    with pytest.raises(InvalidParameterError, match="'enlarge' parameter"):
        ImageVAE(enlarge="auto", epochs=1).fit_resample(images, np.arange(20) % 2)

"""SDVGenerator: SDV's synthesizers behind the package's API.

SDV pins pandas<3, so this file runs in an environment of its own
(``tox -e sdv``, ``.venv-ci-sdv`` in ``.ci/run``) and is skipped where SDV is
absent; tests/test_backends.py covers what needs no SDV.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import mixed_table
from imblearn.pipeline import make_pipeline
from imblearn.utils.estimator_checks import (
    parametrize_with_checks as parametrize_with_sampler_checks,
)
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from augment.backends import SDVGenerator

pytest.importorskip("sdv")

pytestmark = pytest.mark.filterwarnings(
    # SDV 2.0's own deprecation noise under pandas 2.3
    "ignore::FutureWarning",
    "ignore:Classes .* have a single row:UserWarning",
)

# the smallest settings of each synthesizer: the checks fit dozens of times
TINY = {
    "gaussian_copula": None,
    "ctgan": {"epochs": 1, "generator_dim": (16,), "discriminator_dim": (16,)},
    "tvae": {"epochs": 1, "compress_dims": (16,), "decompress_dims": (16,)},
}


def tiny(synthesizer, **kwargs):
    return SDVGenerator(synthesizer, params=TINY[synthesizer], random_state=0, **kwargs)


@pytest.fixture(scope="module")
def labelled():
    y = pd.Series(["no"] * 90 + ["yes"] * 40 + ["maybe"] * 20, name="answer")
    return mixed_table(150), y


@pytest.fixture(scope="module", params=list(TINY))
def fitted(request, labelled):
    """Each synthesizer fitted once on the mixed table (every dtype, NaN)."""
    X, y = labelled
    return tiny(request.param).fit(X, y)


# ------------------------------------------------------------- behaviour
def test_sample_one_class_exact(fitted, labelled):
    X, _ = labelled
    X_new, y_new = fitted.sample(25, y="maybe")
    assert len(X_new) == 25
    assert (y_new == "maybe").all()
    assert list(X_new.columns) == list(X.columns)
    pd.testing.assert_series_equal(X_new.dtypes, X.dtypes)


def test_sample_row_by_row_labels(fitted):
    asked = np.array(["yes", "no", "maybe", "no", "yes", "no"] * 3)
    _, y_new = fitted.sample(len(asked), y=asked)
    np.testing.assert_array_equal(y_new.to_numpy(), asked)


def test_sdv_really_conditions_gaussian_copula():
    # the rows follow their class, not only their label: here class 1 has
    # large values of x and class 0 small ones (a Gaussian copula conditions
    # through a linear dependence, so only roughly: means of about 9 and 3)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": np.r_[rng.normal(0, 1, 100), rng.normal(10, 1, 100)]})
    y = np.repeat([0, 1], 100)
    gen = SDVGenerator(random_state=0).fit(X, y)
    X_high, _ = gen.sample(50, y=1)
    X_low, _ = gen.sample(50, y=0)
    assert X_high["x"].mean() - X_low["x"].mean() > 4


def test_sample_without_y_is_sdvs_joint_model(fitted):
    X_new, y_new = fitted.sample(40)
    assert len(X_new) == len(y_new) == 40
    assert set(y_new) <= {"no", "yes", "maybe"}


def test_conditions_on_columns(fitted, labelled):
    X, _ = labelled
    X_new, y_new = fitted.sample(12, y="yes", conditions={"plan": "pro"})
    assert (X_new["plan"] == "pro").all() and (y_new == "yes").all()
    X_new, y_new = fitted.sample(12, conditions={"member": True})
    assert X_new["member"].all() and len(y_new) == 12
    pd.testing.assert_series_equal(X_new.dtypes, X.dtypes)


def test_bad_conditions(fitted):
    with pytest.raises(ValueError, match="'income' is numeric"):
        fitted.sample(3, conditions={"income": 1.0})
    with pytest.raises(ValueError, match="'Rome' was never seen in column 'city'"):
        fitted.sample(3, conditions={"city": "Rome"})
    with pytest.raises(ValueError, match="'salary' is not a column"):
        fitted.sample(3, conditions={"salary": 1})
    with pytest.raises(TypeError, match="conditions must be a dict"):
        fitted.sample(3, conditions=[("plan", "pro")])


def test_fit_resample_balances_and_enlarges(labelled):
    X, y = labelled
    X_res, y_res = SDVGenerator(random_state=0).fit_resample(X, y)
    assert y_res.value_counts().to_dict() == {"no": 90, "yes": 90, "maybe": 90}
    pd.testing.assert_frame_equal(X_res.iloc[: len(X)], X)  # real rows first
    pd.testing.assert_series_equal(X_res.dtypes, X.dtypes)
    assert y_res.name == "answer"

    gen = SDVGenerator(sampling_strategy={"maybe": 30}, enlarge=2.0, random_state=0)
    _, y_res = gen.fit_resample(X, y)
    assert len(y_res) == 300
    assert (y_res == "maybe").sum() >= 30


def test_caller_data_untouched(labelled):
    X, y = labelled
    X_copy, y_copy = X.copy(), y.copy()
    SDVGenerator(random_state=0).fit_resample(X, y)
    pd.testing.assert_frame_equal(X, X_copy)
    pd.testing.assert_series_equal(y, y_copy)


def test_arrays_and_lists_round_trip():
    X, y = load_iris(return_X_y=True)
    gen = SDVGenerator(random_state=0)
    X_res, y_res = gen.fit_resample(X[:120], y[:120])
    assert isinstance(X_res, np.ndarray) and X_res.dtype == np.float64
    assert np.bincount(y_res).tolist() == [50, 50, 50]
    assert not hasattr(gen, "feature_names_in_") and gen.n_features_in_ == 4

    X_list, y_list = gen.fit_resample(X[:120].tolist(), y[:120].tolist())
    assert isinstance(X_list, list) and isinstance(y_list, list)
    assert len(X_list) == 150


@pytest.mark.parametrize("synthesizer", ["ctgan", "tvae"])
def test_frame_and_array_give_the_same_rows(synthesizer):
    X, y = load_iris(return_X_y=True, as_frame=True)
    from_frame, _ = tiny(synthesizer).fit(X, y).sample(20, y=1)
    from_array, _ = tiny(synthesizer).fit(X.to_numpy(), y.to_numpy()).sample(20, y=1)
    np.testing.assert_array_equal(from_frame.to_numpy(), from_array)


def test_unlabelled_and_continuous_target():
    X, _ = load_iris(return_X_y=True, as_frame=True)
    gen = SDVGenerator(random_state=0).fit(X)
    assert gen.sample(7).shape == (7, 4)

    target = X.pop("petal width (cm)")
    gen = SDVGenerator(enlarge=1.5, random_state=0)
    X_res, y_res = gen.fit_resample(X, target)
    assert len(X_res) == len(y_res) == 225
    assert y_res.dtype == np.float64 and y_res.name == "petal width (cm)"
    with pytest.raises(ValueError, match="continuous target"):
        gen.sample(3, y=1.0)


def test_zero_rows(fitted, labelled):
    X, _ = labelled
    X_new, y_new = fitted.sample(0)
    assert X_new.shape == (0, X.shape[1])
    pd.testing.assert_series_equal(X_new.dtypes, X.dtypes)
    assert len(y_new) == 0


def test_in_a_pipeline_and_grid_search():
    X, y = load_iris(return_X_y=True, as_frame=True)
    X, y = X.iloc[:120], y.iloc[:120]  # class 2 is the minority
    pipe = make_pipeline(SDVGenerator(random_state=0), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert len(pipe[-1].coef_) == 3

    search = GridSearchCV(
        pipe,
        {"sdvgenerator__params": [{"default_distribution": "norm"}, None]},
        cv=2,
    )
    search.fit(X, y)
    assert search.best_params_["sdvgenerator__params"] in (
        {"default_distribution": "norm"},
        None,
    )


def test_clone_keeps_params():
    gen = SDVGenerator("ctgan", params={"epochs": 3}, metadata={"a": "categorical"})
    copy = clone(gen)
    assert copy.get_params() == gen.get_params()
    assert copy.params is not gen.params


# --------------------------------------------------------- randomness
@pytest.mark.parametrize("synthesizer", list(TINY))
def test_reproducible(synthesizer, labelled):
    X, y = labelled
    first = tiny(synthesizer).fit(X, y)
    again = tiny(synthesizer).fit(X, y)
    a1, a2 = first.sample(30), first.sample(30)
    b1 = again.sample(30)
    pd.testing.assert_frame_equal(a1[0], b1[0])
    pd.testing.assert_series_equal(a1[1], b1[1])
    assert not a1[0].equals(a2[0])  # successive calls draw new rows


def test_leaves_global_generators_alone(labelled):
    X, y = labelled
    np.random.seed(123)  # noqa: NPY002 (checking that it survives)
    torch.manual_seed(123)
    expected_np, expected_torch = np.random.rand(), torch.rand(1)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    tiny("ctgan").fit(X, y).sample(10, y="yes")
    assert np.random.rand() == expected_np  # noqa: NPY002
    assert torch.equal(torch.rand(1), expected_torch)


# --------------------------------------------------------- column types
def sdtypes(gen, X):
    """``{column of X: the sdtype SDV was given}`` (SDV sees positions)."""
    columns = gen.metadata_.to_dict()["tables"]["table"]["columns"]
    return {c: columns[f"column_{i}"]["sdtype"] for i, c in enumerate(X.columns)}


def test_types_from_dtypes_not_names():
    # SDV's detection reads a column named like an e-mail address as one and
    # invents addresses; the dtypes say it is a yes/no category
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "voice_mail_plan": rng.choice(["yes", "no"], 200),
            "email": rng.choice(["a", "b"], 200),
            "calls": rng.integers(0, 10, 200),
            "member": rng.random(200) > 0.5,
            "joined": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.integers(0, 900, 200), unit="D"),
        }
    )
    gen = SDVGenerator(random_state=0).fit(X)
    assert sdtypes(gen, X) == {
        "voice_mail_plan": "categorical",
        "email": "categorical",
        "calls": "numerical",
        "member": "boolean",
        "joined": "datetime",
    }
    sampled = gen.sample(300)
    assert set(sampled["voice_mail_plan"]) <= {"yes", "no"}
    assert set(sampled["email"]) <= {"a", "b"}


def test_metadata_overrides(labelled):
    from sdv.metadata import Metadata

    X, y = labelled
    gen = SDVGenerator(metadata={"age": "categorical"}, random_state=0).fit(X, y)
    assert sdtypes(gen, X)["age"] == "categorical"
    assert sdtypes(gen, X)["income"] == "numerical"
    assert set(gen.sample(200)[0]["age"]) <= set(X["age"])  # seen values only

    metadata = Metadata.load_from_dict(
        {"tables": {"t": {"columns": {"age": {"sdtype": "categorical"}}}}}
    )
    gen = SDVGenerator(metadata=metadata, random_state=0).fit(X, y)
    assert sdtypes(gen, X)["age"] == "categorical"

    X_array = X[["income", "age"]].to_numpy()
    gen = SDVGenerator(metadata={1: "categorical"}, random_state=0).fit(X_array, y)
    assert sdtypes(gen, pd.DataFrame(X_array)) == {
        0: "numerical",
        1: "categorical",
    }


# ---------------------------------------------------------------- errors
def test_bad_metadata(labelled):
    X, y = labelled
    with pytest.raises(ValueError, match="'salary' is not a column of X"):
        SDVGenerator(metadata={"salary": "numerical"}).fit(X, y)
    with pytest.raises(ValueError, match="column 'age' needs an sdtype"):
        SDVGenerator(metadata={"age": {"kind": "x"}}).fit(X, y)


def test_rejected_params_are_named(labelled):
    X, y = labelled
    with pytest.raises(ValueError, match="no parameter 'epochs'.*default_distr"):
        SDVGenerator(params={"epochs": 5}).fit(X, y)
    with pytest.raises(
        ValueError, match=r"params\['default_distribution'\].*Invalid distribution"
    ):
        SDVGenerator(params={"default_distribution": "nope"}).fit(X, y)


def test_unknown_synthesizer_lists_the_known_ones(labelled):
    X, y = labelled
    with pytest.raises(ValueError, match="synthesizer.*'ctgan'.*Got 'gan'"):
        SDVGenerator("gan").fit(X, y)


def test_reject_sampling_never_returns_fewer_rows():
    # TVAE cannot condition: SDV reject-samples, and a class the model almost
    # never generates (1 row in 100) comes back short
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=100)})
    y = np.array(["common"] * 99 + ["rare"])
    gen = SDVGenerator(
        "tvae", params={"epochs": 20, "batch_size": 50}, random_state=0
    ).fit(X, y)
    with pytest.raises(RuntimeError, match="rows asked for class 'rare'.*reject"):
        gen.sample(10, y="rare")


# ---------------------------------------------- estimator checks (tiny)
@parametrize_with_checks([tiny(name) for name in TINY])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# imbalanced-learn's checks resample 1,000-row tables a dozen times: seconds
# for GaussianCopula, minutes for CTGAN and TVAE (SDV fits a Gaussian mixture
# to every column first), which test_frame_and_array_give_the_same_rows and
# the behaviour tests above cover instead
@parametrize_with_sampler_checks([tiny("gaussian_copula")])
def test_imblearn_compatible(estimator, check):
    check(estimator)

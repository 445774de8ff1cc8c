"""Fidelity of every tabular generator on the public tables, in one run.

For every data set and model, on the same stratified 70/30 split (tables over
``--max-rows`` rows first cut to a seeded sample of that many): fit seconds,
``augment.evaluate``'s detection (classifier two-sample test, 1 =
indistinguishable), fidelity, train-on-synthetic ratio (TSTR / TRTR),
``dcr_share`` (0.5 = no memorisation), the share of synthetic rows breaking a
rule found on the real rows, fit CPU seconds, SDMetrics' quality score where
``sdmetrics`` is installed, and the columns a classifier tells apart best on
their own (the single-column detection of the three worst columns): where
the next loss of fidelity is, and the share of generated numbers at exactly
their column's training minimum or maximum against the real share (the
pile-up synthcity's TabDDPM shows, synthcity issue 345). SDV models
(``sdv-tvae`` ...) run with their defaults, for the fit-time goal (our fit at
most a tenth of SDV TVAE's). ``--params`` passes parameters to every model of
this package.

SDMetrics and SDV pin pandas<3, so the run that has them uses an environment
of its own (``benchmarks/README.md``)::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv-bench/bin/python benchmarks/fidelity.py \\
        --datasets credit wage1 --models augment-vae augment-diffusion sdv-tvae

Results are appended as JSON lines to ``benchmarks/results/fidelity.jsonl``
and summarised as a table.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tabular import SDV, environment, load, quality, report, sdtypes, warm_up

RESULTS = Path(__file__).parent / "results"
DATASETS = ["credit", "cps", "diamonds", "breast_cancer", "wine", "wage1", "flights"]
MODELS = ["augment-vae", "augment-gan", "augment-diffusion", "augment-transformer"]


class Ours:
    """An augment-learn generator with its defaults, the label as ``y``."""

    def __init__(self, name, label, seed, params):
        import augment

        cls = {
            "augment-vae": augment.TabularVAE,
            "augment-gan": augment.TabularGAN,
            "augment-diffusion": augment.TabularDiffusion,
            "augment-transformer": augment.TabularTransformer,
        }[name]
        self.model, self.label = cls(random_state=seed, **params), label

    def fit(self, table):
        self.model.fit(table.drop(columns=self.label), table[self.label])

    def sample(self, n):
        X, y = self.model.sample(n)
        return X.assign(**{self.label: np.asarray(y)})


def split(dataset, max_rows):
    table, label, _ = load(dataset)
    if len(table) > max_rows:
        table = table.sample(max_rows, random_state=0).reset_index(drop=True)
    train, holdout = train_test_split(
        table, test_size=0.3, stratify=table[label], random_state=0
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True), label


def worst_columns(train, synthetic, n=3):
    """The ``n`` columns best told apart on their own: ``{column: detection}``."""
    from augment.evaluation._fidelity import detection
    from augment.tabular.encoder import column_kind

    scores = {}
    for column in train.columns:
        kinds = {column: column_kind(train[column])}
        rng = np.random.default_rng(0)
        scores[column] = detection(train, synthetic, kinds, rng)
    worst = sorted(scores, key=scores.get)[:n]
    return {str(c): round(float(scores[c]), 3) for c in worst}


def edge_shares(train, synthetic):
    """Mean over numeric columns of the share of rows at exactly the training
    minimum or maximum, real and synthetic, and the column that piles up most."""
    rows = []
    for column in train.columns:
        values = train[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(
            values
        ):
            continue
        if values.nunique() <= 2:
            continue
        ends = [values.min(), values.max()]
        rows.append(
            [column, *(v.isin(ends).mean() for v in (values, synthetic[column]))]
        )
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=["column", "real", "synthetic"])
    worst = frame.loc[(frame["synthetic"] - frame["real"]).idxmax()]
    return {
        "edge_share_real": float(frame["real"].mean()),
        "edge_share_synthetic": float(frame["synthetic"].mean()),
        "edge_worst": [str(worst["column"]), worst["real"], worst["synthetic"]],
    }


def run_one(dataset, model_name, seed, max_rows, params):
    from augment import evaluate

    train, holdout, label = split(dataset, max_rows)
    types = sdtypes(train)
    if model_name.startswith("sdv-"):
        model = SDV(model_name[4:], label, seed, None, types)
    else:
        model = Ours(model_name, label, seed, params)
    result = {"dataset": dataset, "model": model_name, "seed": seed, "rows": len(train)}
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(train)
    result["fit_seconds"] = time.perf_counter() - wall
    result["fit_cpu_seconds"] = time.process_time() - cpu
    synthetic = model.sample(len(train))[train.columns]

    report = evaluate(train, synthetic, target=label, holdout=holdout, random_state=0)
    scores = report.scores.query("column.isna()").set_index("metric")["score"]
    for name in [
        "detection",
        "fidelity",
        "tstr",
        "trtr",
        "dcr_share",
        "rule_violations",
    ]:
        result[name] = float(scores.get(name, np.nan))
    result["tstr_ratio"] = result["tstr"] / result["trtr"]
    try:
        result["sdmetrics_quality"] = quality(train, synthetic, types)["quality"]
    except ImportError:
        pass
    result["worst_columns"] = worst_columns(train, synthetic)
    result.update(edge_shares(train, synthetic))
    return result


def summarise(results):
    frame = pd.DataFrame(results)
    columns = ["fit_seconds", "fit_cpu_seconds", "detection", "sdmetrics_quality"]
    columns += ["fidelity", "tstr_ratio", "dcr_share", "rule_violations"]
    columns += ["edge_share_real", "edge_share_synthetic"]
    columns = [c for c in columns if c in frame]
    table = frame.groupby(["dataset", "model"], sort=False)[columns].mean()
    print(table.round(3).to_markdown())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-rows", type=int, default=6000)
    parser.add_argument(
        "--encoder",
        type=json.loads,
        default={},
        help="TableEncoder parameters for every model, e.g. '{\"point_share\": 0.05}'",
    )
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help="parameters of every augment model, e.g. '{\"epochs\": 300}'",
    )
    parser.add_argument("--tag", default="", help="stored with every result")
    parser.add_argument("--out", default=str(RESULTS / "fidelity.jsonl"))
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    if args.encoder:  # the encoder every tabular generator builds
        import functools

        from augment.tabular import encoder, generator

        generator.TableEncoder = functools.partial(encoder.TableEncoder, **args.encoder)
    warm_up()
    env = environment()
    results = []
    for dataset in args.datasets:
        for model in args.models:
            for seed in args.seeds:
                result = run_one(dataset, model, seed, args.max_rows, args.params)
                stamp = time.strftime("%Y-%m-%d %H:%M")
                result.update(
                    env, tag=args.tag, encoder=args.encoder, params=args.params
                )
                result["time"] = stamp
                report(result, args.out)
                results.append(result)
    summarise(results)


if __name__ == "__main__":
    main()

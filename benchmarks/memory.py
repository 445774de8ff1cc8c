"""Peak memory of fitting and sampling a table with a very wide categorical column.

A 50,000-row table whose ``merchant`` column has 20,000 distinct values (Zipf
frequencies, as ids and postcodes have), a second categorical column, three
numbers and a binary label. The encoder keeps ``max_categories`` slots plus a
shared rare slot, so the model space stays narrow; this checks that nothing
else (conditioning, training-by-sampling, sampling) builds per-value or
rows-by-values structures. One model per process, so that the peak resident
set size (``ru_maxrss``) is the model's::

    python benchmarks/memory.py --model augment-gan
    python benchmarks/memory.py --model augment-vae --rows 50000 --values 20000
"""

import argparse
import json
import resource
import sys
import time

import numpy as np
import pandas as pd


def wide_table(n_rows, n_values, seed=0):
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_values + 1)
    merchant = rng.choice(n_values, size=n_rows, p=weights / weights.sum())
    # every value occurs at least once
    merchant[:n_values] = rng.permutation(n_values)[: min(n_values, n_rows)]
    X = pd.DataFrame(
        {
            "merchant": pd.Series([f"m{v:05d}" for v in merchant], dtype="string"),
            "channel": rng.choice(["web", "shop", "phone"], n_rows),
            "amount": rng.lognormal(3, 1, n_rows).round(2),
            "age": rng.integers(18, 90, n_rows),
            "score": rng.normal(size=n_rows),
        }
    )
    y = pd.Series(np.where(rng.random(n_rows) < 0.1, "fraud", "ok"), name="label")
    return X, y


def peak_mb():
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="augment-gan", choices=["augment-gan", "augment-vae"]
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--values", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    from augment import TabularGAN, TabularVAE

    X, y = wide_table(args.rows, args.values)
    values = int(X["merchant"].nunique())
    result = {"model": args.model, "rows": args.rows, "values": values}
    result["data_mb"] = peak_mb()
    cls = {"augment-gan": TabularGAN, "augment-vae": TabularVAE}[args.model]
    model = cls(random_state=0, epochs=args.epochs)
    start = time.perf_counter()
    model.fit(X, y)
    result["fit_seconds"] = time.perf_counter() - start
    result["fit_peak_mb"] = peak_mb()
    start = time.perf_counter()
    model.sample(args.rows)
    result["sample_seconds"] = time.perf_counter() - start
    if isinstance(model, TabularGAN):  # a value of the shared rare slot
        rare = X["merchant"].value_counts().index[-1]
        X_rare, _ = model.sample(1000, y="fraud", conditions={"merchant": rare})
        result["rare_condition_exact"] = bool((X_rare["merchant"] == rare).all())
    result["peak_mb"] = peak_mb()
    result["model_width"] = model.encoder_.n_features_out_
    print(json.dumps(result))
    return 0 if result["peak_mb"] < 3 * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())

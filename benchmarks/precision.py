"""Mixed precision on the CPU: bfloat16 against float32, per model and table.

For every table, model and precision: fit CPU seconds (``time.process_time``,
one torch thread), sampling CPU seconds for 5,000 rows, and
:func:`augment.evaluate`'s ``fidelity`` (column shapes and pairs) and
``detection`` of the synthetic rows against the training rows. The same
seed and data in both precisions, so that the ratios are of one run::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/precision.py
    OMP_NUM_THREADS=1 python benchmarks/precision.py --datasets credit --rows 2000

Results are appended as JSON lines to ``benchmarks/results/precision.jsonl``.
"""

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tabular import RESULTS, load, report  # noqa: E402

import augment  # noqa: E402

MODELS = ["TabularVAE", "TabularGAN", "TabularDiffusion", "TabularTransformer"]


def measure(table, target, model, precision, seed):
    X, y = table.drop(columns=target), table[target]
    gen = getattr(augment, model)(precision=precision, random_state=seed)
    start = time.process_time()
    gen.fit(X, y)
    fit = time.process_time() - start
    start = time.process_time()
    X_new, y_new = gen.sample(5000, random_state=seed)
    sample = time.process_time() - start
    synthetic = X_new.assign(**{target: y_new.to_numpy()})
    scores = augment.evaluate(table, synthetic, random_state=seed).scores
    headline = scores[scores["column"].isna()]
    figure = headline.set_index("metric")["score"]
    return {
        "fit_cpu_s": round(fit, 2),
        "sample_cpu_s": round(sample, 2),
        "epochs": len(gen.history_),
        "fidelity": round(float(figure["fidelity"]), 4),
        "detection": round(float(figure["detection"]), 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["credit", "wage1", "cps"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--rows", type=int, default=3000, help="training rows, at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for name in args.datasets:
        table, target, _ = load(name)
        if len(table) > args.rows:
            table = table.sample(args.rows, random_state=args.seed)
        table = table.reset_index(drop=True)
        for model in args.models:
            found = {p: measure(table, target, model, p, args.seed) for p in (
                "float32", "bfloat16")}  # fmt: skip
            record = {
                "dataset": name,
                "rows": len(table),
                "model": model,
                **{f"{p}_{k}": v for p, r in found.items() for k, v in r.items()},
                "fit_ratio": round(
                    found["bfloat16"]["fit_cpu_s"] / found["float32"]["fit_cpu_s"], 2
                ),
                "torch": torch.__version__,
                "machine": platform.machine(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            rows.append(record)
            report(record, RESULTS / "precision.jsonl")
    print(f"\n{'data':8} {'model':19} {'fit s f32':>9} {'bf16':>6} {'ratio':>5} "
          f"{'fid f32':>7} {'bf16':>6} {'det f32':>7} {'bf16':>6}")  # fmt: skip
    for r in rows:
        print(
            f"{r['dataset']:8} {r['model']:19} {r['float32_fit_cpu_s']:9.1f} "
            f"{r['bfloat16_fit_cpu_s']:6.1f} {r['fit_ratio']:5.2f} "
            f"{r['float32_fidelity']:7.3f} {r['bfloat16_fidelity']:6.3f} "
            f"{r['float32_detection']:7.3f} {r['bfloat16_detection']:6.3f}"
        )


if __name__ == "__main__":
    main()

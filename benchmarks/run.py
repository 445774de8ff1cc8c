"""One benchmark command: this package's tabular generators against SDV and SMOTE.

Every model sees the same splits of the same tables (a stratified 70/30 split,
``random_state=0``) and is measured in the same run:

- fit seconds (wall and CPU: on a shared machine only the CPU seconds hold),
  sampling rows per second (the best of three calls of as many
  rows as the training split), peak memory (growth of the resident set during
  fit and sampling);
- SDMetrics' QualityReport score of the synthetic training split;
- detection (``augment.evaluate``): ``1 - max(0, 2 AUC - 1)`` of a
  gradient-boosting classifier (native categoricals, 3-fold ROC AUC) telling
  real rows from as many synthetic ones, 1 when it cannot;
- rule violations (``augment.evaluate``): the share of synthetic rows breaking
  a rule between columns found in the real training split;
- TSTR / TRTR: ROC AUC on the real test split (minority class against the
  rest) of gradient boosting trained on synthetic rows, over the same trained
  on the real ones;
- augmentation lift on 100- and 300-row stratified subsets of the training
  split (3 seeds): balanced accuracy on the test split of gradient boosting
  and of logistic regression trained on the subset plus generated rows, over
  the same trained on the subset alone, for "balance" (every class topped up
  to the majority) and "enlarge x5" (balanced, five times the subset);
- DCR share (``augment.evaluate`` too): synthetic rows closer to a training row
  than to a test row, 0.5 for rows as new as unseen real ones, 1 for copies.

Models: every public tabular generator of ``augment`` with its defaults
(discovered, so new ones join by themselves), SDV's GaussianCopula, CTGAN
and TVAE with theirs (through :class:`augment.backends.SDVGenerator`, which
gives them exact class counts: native for GaussianCopula, rejection sampling
for the others), and imbalanced-learn's SMOTE / SMOTENC for the augmentation
figures. For every figure the table gives the best of ours, the best peer
and their ratio.

SDV and SDMetrics pin pandas<3: run it in their environment
(``benchmarks/README.md``)::

    .venv-bench/bin/python benchmarks/run.py --quick     # 3 tables, < 5 minutes
    nice -n 10 .venv-bench/bin/python benchmarks/run.py  # the full run

The table is printed as markdown and everything is written as JSON to
``benchmarks/results/run-quick.json`` or ``run-full.json``.

``benchmarks/run.py small-data [options]`` runs the small-data protocol
(``small_data.py``: sizes 20 to 500, five predictors, against SMOTE and
real-only) with the same options as that script.
"""

import argparse
import ctypes
import json
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tabular import (
    DATASETS,
    RESULTS,
    RULE_DATASETS,
    _fastest,
    as_features,
    downstream_auc,
    environment,
    load,
    quality,
    sdtypes,
    warm_up,
)

PEERS = {
    "SDV GaussianCopula": "gaussian_copula",
    "SDV CTGAN": "ctgan",
    "SDV TVAE": "tvae",
}
SMOTE = "SMOTE"

# (figure, better) in table order; "higher" or "lower" is better
FIGURES = [
    ("fit_seconds", "lower"),
    ("fit_cpu_seconds", "lower"),
    ("sample_rows_per_second", "higher"),
    ("peak_memory_mb", "lower"),
    ("quality", "higher"),
    ("detection", "higher"),
    ("rule_violations", "lower"),
    ("tstr_trtr", "higher"),
    ("lift_100", "higher"),
    ("lift_300", "higher"),
    ("dcr_share", "lower"),
]
METRIC_ROWS = 5000  # rows of each table the quality and detection scores see


# ---------------------------------------------------------------- models
def our_models():
    """Every public tabular generator of ``augment``, by class name."""
    import augment
    from augment.tabular.generator import TabularGenerator

    found = {}
    for name in augment.__all__:
        obj = getattr(augment, name)
        if isinstance(obj, type) and issubclass(obj, TabularGenerator):
            found[name] = obj
    return found


def make_generator(name, seed, ours):
    if name in ours:
        return ours[name](random_state=seed)
    from augment.backends import SDVGenerator

    return SDVGenerator(PEERS[name], random_state=seed)


# --------------------------------------------------------------- figures
class PeakMemory:
    """Peak growth of the resident set size while the block runs (polled)."""

    def __enter__(self):
        try:  # hand freed heap back, so that earlier models do not hide growth
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self.start = self.peak = _rss_mb()
        self._running = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while self._running:
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())
        self.mb = self.peak - self.start


def _rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def evaluated(train, synthetic, test, seed):
    """Detection, rule violations and DCR share, from ``augment.evaluate``."""
    from augment import evaluate

    report = evaluate(
        train, synthetic, holdout=test, subsample=METRIC_ROWS, random_state=seed
    )
    scores = report.scores[report.scores["column"].isna()].set_index("metric")
    return {
        figure: float(scores.loc[figure, "score"])
        for figure in ("detection", "rule_violations", "dcr_share")
    }


def classifiers(categories, numeric):
    """The two downstream models of the lift: ``name -> factory``."""

    def boosting():
        return HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=0
        )

    def logistic():
        encode = make_column_transformer(
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                list(categories),
            ),
            (make_pipeline(SimpleImputer(), StandardScaler()), list(numeric)),
        )
        return make_pipeline(encode, LogisticRegression(max_iter=1000))

    return {"boosting": boosting, "logistic": logistic}


def subset(train, label, n, seed):
    """A stratified ``n``-row subset, with at least two rows of every class."""
    part, _ = train_test_split(
        train, train_size=n, stratify=train[label], random_state=seed
    )
    return part


def added_rows(y, mode):
    """Rows to generate per class: top up to the majority, or balanced x5."""
    counts = y.value_counts()
    if mode == "balance":
        target = pd.Series(counts.max(), index=counts.index)
    else:  # "enlarge x5": balanced classes, five times the rows
        k = len(counts)
        target = pd.Series(5 * len(y) // k, index=counts.index)
        target.iloc[: 5 * len(y) % k] += 1
    return (target - counts).clip(lower=0)


def smote_rows(part, label, categories, mode, seed):
    """SMOTE (SMOTENC with categoricals) rows for ``mode``, imputed first."""
    from imblearn.over_sampling import SMOTE as Smote
    from imblearn.over_sampling import SMOTENC

    X = part.drop(columns=label)
    dates = X.select_dtypes("datetime").columns  # SMOTE interpolates numbers
    X[dates] = X[dates].apply(lambda c: c.astype("int64").astype(float))
    X = X.fillna({c: X[c].median() for c in X.columns if c not in categories})
    X = X.fillna({c: "missing" for c in categories})
    counts = part[label].value_counts()
    strategy = (counts + added_rows(part[label], mode)).to_dict()
    k = int(min(5, counts.min() - 1))
    cat_idx = [X.columns.get_loc(c) for c in categories]
    if cat_idx:
        sampler = SMOTENC(
            cat_idx, sampling_strategy=strategy, k_neighbors=k, random_state=seed
        )
    else:
        sampler = Smote(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
    X_res, y_res = sampler.fit_resample(X, part[label])
    extra = X_res.iloc[len(X) :].copy()
    extra[dates] = extra[dates].apply(lambda c: pd.to_datetime(c.round(), unit="ns"))
    return extra.assign(**{label: y_res[len(X) :].to_numpy()})


def lift(name, ours, train, test, label, categories, sizes, seeds, baselines):
    """Mean balanced-accuracy ratio (augmented / real) per subset size, and
    the detail of every (size, seed, mode, classifier)."""
    numeric = [c for c in train.columns if c not in categories and c != label]
    models = classifiers(categories, numeric)
    detail, errors = [], []
    for n in sizes:
        if n >= len(train):  # wine has 124 training rows: no 300-row subset
            continue
        for seed in seeds:
            part = subset(train, label, n, seed)
            generator = None
            if name != SMOTE:
                generator = make_generator(name, seed, ours)
                generator.fit(part.drop(columns=label), part[label])
            for mode in ["balance", "enlarge x5"]:
                try:
                    if generator is None:
                        extra = smote_rows(part, label, categories, mode, seed)
                    else:
                        add = added_rows(part[label], mode)
                        labels = np.repeat(add.index.to_numpy(), add.to_numpy())
                        X_new, y_new = generator.sample(len(labels), y=labels)
                        extra = X_new.assign(**{label: np.asarray(y_new)})
                except RuntimeError as error:  # SDV's rejection sampling ran short
                    errors.append(f"{n} rows, seed {seed}, {mode}: {error}"[:300])
                    continue
                augmented = pd.concat([part, extra[part.columns]], ignore_index=True)
                for clf, factory in models.items():
                    score = _balanced_accuracy(
                        factory(), augmented, test, label, categories
                    )
                    detail.append(
                        {
                            "rows": n,
                            "seed": seed,
                            "mode": mode,
                            "classifier": clf,
                            "balanced_accuracy": score,
                            "ratio": score / baselines[(n, seed, clf)],
                        }
                    )
    frame = pd.DataFrame(detail)
    means = {
        f"lift_{n}": frame.loc[frame["rows"] == n, "ratio"].mean()
        if len(frame)
        else np.nan
        for n in sizes
    }
    return means, detail, errors


def _balanced_accuracy(model, train, test, label, categories):
    model.fit(as_features(train, label, categories), train[label])
    predicted = model.predict(as_features(test, label, categories))
    return balanced_accuracy_score(test[label], predicted)


# ------------------------------------------------------------------ runs
def prepare(dataset, max_rows, max_test_rows):
    table, label, positive = load(dataset)
    train, test = train_test_split(
        table, test_size=0.3, stratify=table[label], random_state=0
    )
    # the same splits for every model; large tables keep stratified subsets
    if max_rows and len(train) > max_rows:
        train, _ = train_test_split(
            train, train_size=max_rows, stratify=train[label], random_state=0
        )
    if max_test_rows and len(test) > max_test_rows:
        test, _ = train_test_split(
            test, train_size=max_test_rows, stratify=test[label], random_state=0
        )
    types = sdtypes(table)
    categories = {
        c: sorted(table[c].dropna().unique())
        for c, t in types.items()
        if t in ("categorical", "boolean") and c != label
    }
    return (
        train.reset_index(drop=True),
        test.reset_index(drop=True),
        label,
        positive,
        types,
        categories,
    )


def run_model(name, ours, seed, data):
    train, test, label, positive, types, categories, trtr = data
    generator = make_generator(name, seed, ours)
    X, y = train.drop(columns=label), train[label]
    with PeakMemory() as memory:
        start, cpu = time.perf_counter(), time.process_time()
        generator.fit(X, y)
        fit_seconds = time.perf_counter() - start
        # CPU seconds hold on a shared machine, where wall seconds grow with load
        fit_cpu_seconds = time.process_time() - cpu
        seconds, (X_new, y_new) = _fastest(lambda: generator.sample(len(train)))
    synthetic = X_new.assign(**{label: np.asarray(y_new)})[train.columns]
    real_part = train.sample(min(len(train), METRIC_ROWS), random_state=seed)
    return {
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu_seconds,
        "sample_rows_per_second": len(train) / seconds,
        "peak_memory_mb": memory.mb,
        "quality": quality(real_part, synthetic.iloc[:METRIC_ROWS], types)["quality"],
        "tstr_trtr": downstream_auc(synthetic, test, label, positive, categories)
        / trtr,
        **evaluated(train, synthetic, test, seed),
    }


def run_dataset(dataset, models, ours, args):
    train, test, label, positive, types, categories = prepare(
        dataset, args.max_rows, args.max_test_rows
    )
    trtr = downstream_auc(train, test, label, positive, categories)
    data = (train, test, label, positive, types, categories, trtr)
    numeric = [c for c in train.columns if c not in categories and c != label]
    baselines = {}
    for n in args.lift_rows:
        if n >= len(train):
            continue
        for seed in args.lift_seeds:
            part = subset(train, label, n, seed)
            for clf, factory in classifiers(categories, numeric).items():
                baselines[(n, seed, clf)] = _balanced_accuracy(
                    factory(), part, test, label, categories
                )
    results = []
    for name in models:
        for seed in args.seeds if name != SMOTE else args.seeds[:1]:
            result = {
                "dataset": dataset,
                "model": name,
                "seed": seed,
                "train_rows": len(train),
                "test_rows": len(test),
                "ours": name in ours,
            }
            start = time.perf_counter()
            if name != SMOTE:
                result.update(run_model(name, ours, seed, data))
            if seed == args.seeds[0]:  # the lift has seeds of its own
                means, detail, errors = lift(
                    name,
                    ours,
                    train,
                    test,
                    label,
                    categories,
                    args.lift_rows,
                    args.lift_seeds,
                    baselines,
                )
                result.update(means, lift_detail=detail)
                if errors:
                    result["lift_errors"] = errors
            result["seconds"] = time.perf_counter() - start
            print(
                json.dumps(
                    {k: v for k, v in result.items() if k != "lift_detail"}, default=str
                ),
                flush=True,
            )
            results.append(result)
    return results


# --------------------------------------------------------------- summary
def summarise(results, ours):
    frame = pd.DataFrame(results)
    figures = [f for f, _ in FIGURES if f in frame]
    means = frame.groupby(["dataset", "model"], sort=False)[figures].mean()
    rows = []
    for dataset in frame["dataset"].unique():
        table = means.loc[dataset]
        mine = table[table.index.isin(list(ours))]
        peers = table[~table.index.isin(list(ours))]
        for figure, better in FIGURES:
            if figure not in table:
                continue
            a, b = mine[figure].dropna(), peers[figure].dropna()
            if not len(a) or not len(b):
                continue
            pick = (
                (lambda s: s.idxmax()) if better == "higher" else (lambda s: s.idxmin())
            )
            best_ours, best_peer = pick(a), pick(b)
            rows.append(
                {
                    "dataset": dataset,
                    "figure": figure,
                    "better": better,
                    "ours": f"{a[best_ours]:.3g} ({best_ours})",
                    "best peer": f"{b[best_peer]:.3g} ({best_peer})",
                    "ratio": a[best_ours] / b[best_peer],
                }
            )
    return means, pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="credit, CPS1988 and breast cancer, 400 training rows, one seed",
    )
    parser.add_argument(
        "--datasets", nargs="+", default=None, choices=DATASETS + RULE_DATASETS
    )
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--lift-seeds", nargs="+", type=int, default=None)
    parser.add_argument("--lift-rows", nargs="+", type=int, default=None)
    parser.add_argument(
        "--max-rows",
        type=int,
        default=None,
        help="training rows per data set (a stratified subset)",
    )
    parser.add_argument("--max-test-rows", type=int, default=None)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: the machine is shared)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    quick = {
        "seeds": [0],
        "lift_seeds": [0],
        "lift_rows": [100],
        "max_rows": 400,
        "max_test_rows": 1000,
    }
    full = {
        "seeds": [0],
        "lift_seeds": [0, 1, 2],
        "lift_rows": [100, 300],
        "max_rows": 5000,
        "max_test_rows": 5000,
    }
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.datasets is None:  # quick: one table of each kind
        quick_sets = ["credit", "cps", "breast_cancer"]
        args.datasets = quick_sets if args.quick else DATASETS + RULE_DATASETS
    kind = "quick" if args.quick else "full"
    out = Path(args.out or RESULTS / f"run-{kind}.json")

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    # OpenMP threads spin while they wait: on a shared machine gradient
    # boosting with two threads ran 20 times slower than with one
    threadpool_limits(args.threads)
    warnings.filterwarnings("ignore")
    warm_up()
    ours = our_models()
    models = args.models or [*ours, *PEERS, SMOTE]
    start = time.perf_counter()
    out.parent.mkdir(exist_ok=True)
    results = []
    for dataset in args.datasets:
        results += run_dataset(dataset, models, ours, args)
        # written after every table: a long run that stops keeps what it measured
        write(out, args, results, ours, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    means, ratios = summarise(results, ours)
    print(f"\n## Every model (means over seeds), {seconds / 60:.1f} minutes\n")
    print(means.round(3).to_markdown())
    print("\n## Best of ours against the best peer (ratio = ours / peer)\n")
    print(ratios.round(3).to_markdown(index=False))
    print(f"\nwritten to {out}")


def write(out, args, results, ours, seconds):
    _, ratios = summarise(results, ours)
    record = {
        "command": "benchmarks/run.py" + (" --quick" if args.quick else ""),
        "args": vars(args),
        "environment": environment(),
        "cpu": os.cpu_count(),
        "load_average": os.getloadavg(),
        "minutes": seconds / 60,
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "datasets_done": sorted({r["dataset"] for r in results}),
        "results": results,
        "ratios": ratios.to_dict(orient="records"),
    }
    out.write_text(json.dumps(record, indent=1, default=str))


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["small-data"]:  # the small-data protocol (small_data.py)
        import small_data

        small_data.main(sys.argv[2:])
    else:
        main()

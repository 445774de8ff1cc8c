"""Small data sets: does synthetic data help, against SMOTE and real rows alone?

The protocol of issue 17 (after TabEBM, NeurIPS 2024): for every table,
training size, seed, predictor and mode, the balanced accuracy on a fixed real
test split of a predictor trained on

- ``real``: the training rows alone;
- ``SMOTE``: them plus imbalanced-learn's SMOTE rows (SMOTENC with
  categorical columns, imputed first);
- every generator of the package (discovered in ``augment``'s public names):
  them plus the generator's rows, the generator fitted once on the training
  rows (with their labels) and sampled for both modes;
- with ``--auto GENERATOR ...``, ``AugmentedClassifier(predictor,
  generator)`` with its defaults: the amount of synthetic rows (none
  included) chosen by inner cross-validation on the training rows with that
  predictor, which is then refitted on the chosen set (mode ``auto``).

Modes: ``balance`` tops every class up to the majority; ``enlarge`` balances
and adds rows in the balanced proportions up to ``--enlarge`` times the
training rows (``sampling_strategy="auto", enlarge=...`` of the generators).
SMOTE gets the same class counts. Training rows are stratified subsets of the
70% training split (``random_state=0``) with at least two rows per class;
the test split is the other 30%, at most ``--test-rows`` rows.

Tables (the loaders of ``tabular.py``): credit_data (``Status``), breast
cancer, wine, diamonds (``cut``, five grades), CPS1988 (``parttime``), wage1
(``female``), and ``structured``, built here: its class depends on a
product of numbers, a square and a category.
Predictors: logistic regression, k-nearest neighbours, random forest,
gradient boosting and an MLP, all behind the same encoding (median / mode
imputation, scaled numbers, one-hot categories).

A cell is (table, size, seed, mode, predictor); per method the summary gives
the share of cells where it beats SMOTE (strictly) and where it is not below
real-only (by more than 0.005), and the mean difference to both::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/small_data.py \\
        --datasets credit breast_cancer wine structured --sizes 50 100 200 \\
        --seeds 0 1 --generators TabularVAE TabularGAN --auto TabularVAE

Every score is written as a JSON line to ``benchmarks/results/small_data.jsonl``
(replaced by each run; ``--out`` to keep several), then the summary;
``--summary A.jsonl B.jsonl`` summarises past runs of the same splits together.
"""

import argparse
import ast
import copy
import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tabular import RESULTS, environment, load, sdtypes, warm_up

DATASETS = [
    "credit",
    "breast_cancer",
    "wine",
    "diamonds",
    "cps",
    "wage1",
    "structured",
]
SIZES = [20, 50, 100, 200, 500]
PREDICTORS = ["logistic", "knn", "forest", "boosting", "mlp"]
MODES = ["balance", "enlarge"]
TIE = 0.005  # "not below real-only": within this much balanced accuracy


# ------------------------------------------------------------------ data
def load_table(name):
    """``(table, label column)``: the loaders of ``tabular.py`` and one more."""
    if name == "structured":
        return structured_table(), "label"
    table, label, _ = load(name)
    return table, label


def structured_table(n=6000, seed=0):
    """A table of known structure: the class (30% "yes") is a noisy function
    of ``x1 * x2``, ``x3**2`` and a category; ``x4`` and ``noise`` are noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    shift = pd.Series({"a": 0.0, "b": 1.0, "c": -1.0, "d": 2.0})[group].to_numpy()
    score = 1.5 * x[:, 0] * x[:, 1] - x[:, 2] ** 2 + shift + rng.normal(0, 0.5, n)
    label = np.where(score > np.quantile(score, 0.7), "yes", "no")
    frame = pd.DataFrame(x, columns=["x1", "x2", "x3", "x4"])
    return frame.assign(group=group, noise=rng.exponential(size=n), label=label)


def prepare(name, test_rows):
    """The fixed split of a table: ``(train, test, label, categories)``."""
    table, label = load_table(name)
    train, test = train_test_split(
        table, test_size=0.3, stratify=table[label], random_state=0
    )
    if len(test) > test_rows:
        test, _ = train_test_split(
            test, train_size=test_rows, stratify=test[label], random_state=0
        )
    types = sdtypes(table.drop(columns=label))
    categories = [c for c, t in types.items() if t in ("categorical", "boolean")]
    return train.reset_index(drop=True), test.reset_index(drop=True), label, categories


def subset(train, label, n, seed):
    """``n`` training rows, stratified, with at least two rows of every class."""
    counts = train[label].value_counts()
    want = np.maximum(np.floor(n * counts / counts.sum()).astype(int), 2)
    want[counts.idxmax()] += n - want.sum()
    parts = [
        train[train[label] == value].sample(k, random_state=seed)
        for value, k in want.items()
    ]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def added_rows(y, mode, factor):
    """Synthetic rows per class (a Series): top every class up to the
    majority; ``enlarge`` then adds rows in the balanced proportions until
    there are ``factor`` times ``len(y)`` rows (as the generators do)."""
    counts = y.value_counts()
    added = counts.max() - counts
    if mode == "enlarge":
        extra = max(round(factor * len(y)) - len(y) - added.sum(), 0)
        share = np.floor(extra / len(counts)) * np.ones(len(counts), dtype=int)
        share[: extra - int(share.sum())] += 1
        added = added + share.astype(int)
    return added


# ------------------------------------------------------------ predictors
def predictor(name, categories, numeric, seed):
    """A fresh predictor behind the shared encoding."""
    encode = make_column_transformer(
        (
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore"),
            ),
            categories,
        ),
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    )
    model = {
        "logistic": lambda: LogisticRegression(max_iter=1000),
        "knn": lambda: KNeighborsClassifier(),
        "forest": lambda: RandomForestClassifier(random_state=seed),
        "boosting": lambda: HistGradientBoostingClassifier(random_state=seed),
        "mlp": lambda: MLPClassifier((64,), max_iter=500, random_state=seed),
    }[name]()
    return make_pipeline(encode, model)


def score(model, train, test, label, weight=None, n_real=None):
    """Balanced accuracy on ``test``; with ``weight``, the rows after the
    first ``n_real`` (the synthetic ones) weigh ``weight`` in the fit."""
    params = {}
    if weight is not None:
        weights = np.where(np.arange(len(train)) < n_real, 1.0, weight)
        params = {f"{model.steps[-1][0]}__sample_weight": weights}
    model.fit(train.drop(columns=label), train[label], **params)
    return balanced_accuracy_score(test[label], model.predict(test.drop(columns=label)))


# ------------------------------------------------------------ augmenters
def generators():
    """Every public tabular generator of ``augment``, by class name."""
    import augment
    from augment.tabular.generator import TabularGenerator

    return {
        name: getattr(augment, name)
        for name in augment.__all__
        if isinstance(getattr(augment, name), type)
        and issubclass(getattr(augment, name), TabularGenerator)
    }


def build(classes, spec, seed):
    """A generator from ``NAME`` or ``NAME:key=value,key=value`` (values read
    as Python literals where they parse, else as strings; a value may hold
    commas, as ``hidden_dims=[64,64]``). ``random_state`` is the cell's seed
    unless the spec sets it (to measure how much the generator's own seed
    moves the scores)."""
    name, _, options = spec.partition(":")
    params = {}
    for option in filter(None, re.split(r",(?=\w+=)", options)):
        key, _, value = option.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return classes[name](**{"random_state": seed, **params})


def smote_rows(part, label, categories, added, seed):
    """SMOTE (SMOTENC with categories) rows, ``added`` per class, imputed first."""
    from imblearn.over_sampling import SMOTE, SMOTENC

    X = part.drop(columns=label)
    X = X.fillna({c: X[c].median() for c in X.columns if c not in categories})
    X = X.fillna({c: "missing" for c in categories})
    counts = part[label].value_counts()
    strategy = (counts + added).to_dict()
    k = int(min(5, counts.min() - 1))
    if categories:
        index = [X.columns.get_loc(c) for c in categories]
        sampler = SMOTENC(index, sampling_strategy=strategy, k_neighbors=k)
    else:
        sampler = SMOTE(sampling_strategy=strategy, k_neighbors=k)
    X_res, y_res = sampler.set_params(random_state=seed).fit_resample(X, part[label])
    return X_res.iloc[len(X) :].assign(**{label: y_res[len(X) :].to_numpy()})


def fidelity(oracle, rows, label):
    """The share of synthetic ``rows`` that ``oracle``, a classifier trained
    on the whole training split (far more rows than a cell's), assigns to
    the class they were generated for: how many fall on their class's side
    of the boundary."""
    if not len(rows):
        return None
    predicted = oracle.predict(rows.drop(columns=label))
    return float(np.mean(predicted == rows[label].to_numpy()))


def generated_rows(generator, label, added):
    labels = np.repeat(added.index.to_numpy(), added.to_numpy())
    X, y = generator.sample(len(labels), y=labels)
    return X.assign(**{label: np.asarray(y)})


# ------------------------------------------------------------------ runs
def run_cells(dataset, args, classes, log):
    """Every score of one table: a record per (size, seed, mode, predictor, method)."""
    train, test, label, categories = prepare(dataset, args.test_rows)
    numeric = [c for c in train.columns if c not in categories and c != label]
    oracle = None
    if args.fidelity:  # gradient boosting on the whole training split
        oracle = predictor("boosting", categories, numeric, 0)
        oracle.fit(train.drop(columns=label), train[label])

    def new(name, seed):
        return predictor(name, categories, numeric, seed)

    for n in args.sizes:
        if n > len(train) // 2:  # wine has 124 training rows
            continue
        for seed in args.seeds:
            part = subset(train, label, n, seed)
            cell = {"dataset": dataset, "rows": n, "seed": seed}
            for name in args.predictors:
                log(cell, None, name, "real", score(new(name, seed), part, test, label))
            sets = {}  # (method, mode) -> augmented rows
            for mode in args.modes:
                added = added_rows(part[label], mode, args.enlarge)
                extra = smote_rows(part, label, categories, added, seed)
                sets["SMOTE", mode] = pd.concat([part, extra], ignore_index=True)
            for method in args.generators:
                generator = build(classes, method, seed)
                start = time.perf_counter()
                generator.fit(part.drop(columns=label), part[label])
                seconds = time.perf_counter() - start
                for mode in args.modes:
                    added = added_rows(part[label], mode, args.enlarge)
                    extra = generated_rows(generator, label, added)[part.columns]
                    sets[method, mode] = pd.concat([part, extra], ignore_index=True)
                    sets[method, mode].attrs["fit_seconds"] = seconds
            for (method, mode), rows in sets.items():
                if oracle is not None:
                    rows.attrs["fidelity"] = fidelity(oracle, rows[len(part) :], label)
                for name in args.predictors:
                    value = score(new(name, seed), rows, test, label)
                    log(cell, mode, name, method, value, **rows.attrs)
                    if name == "knn" or method == "SMOTE":  # no sample_weight
                        continue
                    for weight in args.weights:
                        value = score(
                            new(name, seed), rows, test, label, weight, len(part)
                        )
                        log(cell, mode, name, f"{method}@w{weight}", value)
            if args.auto:
                run_auto(part, test, label, cell, args, classes, new, log)


def memoised(cls, fits):
    """A subclass of ``cls`` whose ``fit`` on rows, labels and parameters
    already seen takes a copy of that fit's state (``fits``, a dict) instead
    of training again. The inner folds (``StratifiedKFold`` without shuffling)
    and the generator's seed do not depend on the predictor, so every
    predictor's ``AugmentedClassifier`` fits the same generators: the scores
    are those of fitting them afresh (fitting is deterministic), in a fifth
    of the time."""

    class Memoised(cls):
        def fit(self, X, y=None):
            rows = pd.util.hash_pandas_object(X, index=False).to_numpy()
            labels = pd.util.hash_pandas_object(pd.Series(y), index=False)
            key = (
                repr(sorted(self.get_params().items())),
                hashlib.sha256(rows.tobytes() + labels.to_numpy().tobytes()).digest(),
            )
            if key not in fits:
                fits[key] = copy.deepcopy(vars(super().fit(X, y)))
            vars(self).update(copy.deepcopy(fits[key]))
            return self

    Memoised.__name__ = Memoised.__qualname__ = cls.__name__
    return Memoised


def run_auto(part, test, label, cell, args, classes, new, log):
    """``AugmentedClassifier`` for every generator and predictor: mode "auto"."""
    from augment import AugmentedClassifier

    X, y = part.drop(columns=label), part[label]
    fits = {}  # this cell's generator fits, shared by the predictors
    memo = {name: memoised(cls, fits) for name, cls in classes.items()}
    # a repeated 5-fold: its first repetition replays the default cv=5
    cv = 5
    if args.auto_repeats > 1:
        cv = RepeatedStratifiedKFold(
            n_splits=5, n_repeats=args.auto_repeats, random_state=cell["seed"]
        )
    for method in args.auto:
        for name in args.predictors:
            model = AugmentedClassifier(
                new(name, cell["seed"]), build(memo, method, cell["seed"]), cv=cv
            )
            start = time.perf_counter()
            model.fit(X, y)
            seconds = time.perf_counter() - start
            value = balanced_accuracy_score(test[label], model.predict(test))
            results = model.cv_results_
            names = (
                []
                if results is None
                else [
                    str(a) if a == 0 else f"{a}@w{w:g}"
                    for a, w in zip(results["amount"], results["weight"])
                ]
            )
            log(
                cell,
                "auto",
                name,
                f"{method}+auto",
                value,
                fit_seconds=seconds,
                amount=str(model.amount_),
                weight=model.weight_,
                search_seconds=model.search_seconds_,
                # the inner scores, to study other selection rules afterwards
                cv_mean_scores=None
                if results is None
                else dict(zip(names, results["mean_test_score"].tolist())),
                cv_split_scores=None
                if results is None
                else {
                    names[i]: [
                        float(values[i])
                        for key, values in results.items()
                        if key.startswith("split")
                    ]
                    for i in range(len(names))
                },
            )


# --------------------------------------------------------------- summary
def summarise(frame):
    """Per method and mode: cells, share beating SMOTE, share not below
    real-only, mean difference to each; and the cells, one row per
    (cell, method, mode), for :func:`breakdown`."""
    keys = ["dataset", "rows", "seed", "predictor"]
    real = frame[frame["method"] == "real"].drop_duplicates(keys)
    real = real.set_index(keys)["balanced_accuracy"]
    smote = frame[frame["method"] == "SMOTE"].set_index([*keys, "mode"])
    smote = smote["balanced_accuracy"]
    ours = frame[~frame["method"].isin(["real", "SMOTE"])].copy()
    ours["vs_real"] = (
        ours["balanced_accuracy"].to_numpy()
        - real.reindex(pd.MultiIndex.from_frame(ours[keys])).to_numpy()
    )
    # "auto" cells are compared with SMOTE's balance cells
    mode = ours["mode"].replace("auto", "balance")
    ours["vs_smote"] = (
        ours["balanced_accuracy"].to_numpy()
        - smote.reindex(
            pd.MultiIndex.from_frame(ours[keys].assign(mode=mode))
        ).to_numpy()
    )
    smote_rows = frame[frame["method"] == "SMOTE"].copy()
    smote_rows["vs_real"] = (
        smote_rows["balanced_accuracy"].to_numpy()
        - real.reindex(pd.MultiIndex.from_frame(smote_rows[keys])).to_numpy()
    )
    smote_rows["vs_smote"] = 0.0
    both = pd.concat([ours, smote_rows])
    both["beats_smote"] = both["vs_smote"] > 0
    both["ties_smote"] = both["vs_smote"] == 0
    both["not_below_real"] = both["vs_real"] >= -TIE
    groups = both.groupby(["method", "mode"])
    table = pd.DataFrame(
        {
            "cells": groups.size(),
            "beats SMOTE": groups["beats_smote"].mean(),
            # the same score as SMOTE's: mostly classifiers that cannot
            # split at all (gradient boosting's 20-row leaves on 20 rows)
            "ties SMOTE": groups["ties_smote"].mean(),
            "not below real": groups["not_below_real"].mean(),
            "mean vs real": groups["vs_real"].mean(),
            "mean vs SMOTE": groups["vs_smote"].mean(),
        }
    )
    if "fidelity" in both:  # --fidelity: the mean class fidelity of the rows
        table["class fidelity"] = groups["fidelity"].mean()
    return table, both


def breakdown(both, value, column):
    """The mean of ``value`` (a column of :func:`summarise`'s cells) per
    method and mode (rows) and per value of ``column`` (columns)."""
    return both.pivot_table(
        value, index=["method", "mode"], columns=column, aggfunc="mean"
    )


def plot(frame, path):
    """Mean lift over real-only by training rows and by predictor, per method
    and mode (the figure of the user guide)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, both = summarise(frame)
    by_size = breakdown(both, "vs_real", "rows")
    by_predictor = breakdown(both, "vs_real", "predictor")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for (method, mode), row in by_size.iterrows():
        style = "--" if method == "SMOTE" else "-"
        axes[0].plot(
            row.index, row.to_numpy(), style, marker="o", label=f"{method} {mode}"
        )
    axes[0].set(
        xlabel="training rows",
        ylabel="balanced accuracy minus real-only",
        xscale="log",
        xticks=list(by_size.columns),
        xticklabels=[str(c) for c in by_size.columns],
    )
    axes[0].minorticks_off()
    axes[0].axhline(0, color="grey", lw=0.8)
    by_predictor.T.plot.bar(ax=axes[1], legend=False, rot=0)
    axes[1].set(xlabel="predictor", ylabel="balanced accuracy minus real-only")
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[0].legend(fontsize=7)
    figure.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    parser.add_argument(
        "--predictors", nargs="+", default=PREDICTORS, choices=PREDICTORS
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--generators",
        nargs="*",
        default=None,
        help="none: real and SMOTE only; NAME:key=value,... sets parameters",
    )
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--enlarge", type=float, default=2.0, help="enlarge factor")
    parser.add_argument(
        "--auto",
        nargs="*",
        default=[],
        metavar="GENERATOR",
        help="also AugmentedClassifier(predictor, generator) for these",
    )
    parser.add_argument(
        "--auto-repeats",
        type=int,
        default=1,
        help="--auto: inner folds of a 5-fold repeated so many times (shuffled, "
        "seeded by the cell's seed; 1: AugmentedClassifier's default cv=5)",
    )
    parser.add_argument(
        "--weights",
        nargs="*",
        type=float,
        default=[],
        help="also score the generators' sets with their synthetic rows "
        "weighted so (sample_weight; not k-NN)",
    )
    parser.add_argument(
        "--fidelity",
        action="store_true",
        help="also log the class fidelity of every set's synthetic rows (the "
        "share that boosting on the whole training split gives their label)",
    )
    parser.add_argument("--test-rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "small_data.jsonl"))
    parser.add_argument(
        "--summary",
        nargs="+",
        metavar="JSONL",
        help="only summarise past runs (of the same splits: real and SMOTE "
        "scores are taken once)",
    )
    parser.add_argument("--plot", metavar="PNG", help="with --summary: the figure")
    args = parser.parse_args(argv)
    if args.summary:
        lines = [json.loads(line) for path in args.summary for line in open(path)]
        frame = pd.DataFrame([r for r in lines if "method" in r])
        keys = ["dataset", "rows", "seed", "mode", "predictor", "method"]
        print_summary(frame.drop_duplicates(keys))
        if args.plot:
            plot(frame.drop_duplicates(keys), args.plot)
        return

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    warnings.filterwarnings("ignore")
    warm_up()
    classes = generators()
    if args.generators is None:
        args.generators = list(classes)
    names = {spec.partition(":")[0] for spec in args.generators + args.auto}
    unknown = names - set(classes)
    if unknown:
        parser.error(f"unknown generators {sorted(unknown)}; known: {list(classes)}")

    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    env = {**environment(), "load_average": os.getloadavg()[0]}
    records, start = [], time.perf_counter()
    with open(out, "w") as f:

        def log(cell, mode, name, method, value, **extra):
            record = {
                **cell,
                "mode": mode,
                "predictor": name,
                "method": method,
                "balanced_accuracy": value,
                **extra,
            }
            records.append(record)
            f.write(json.dumps(record) + "\n")
            f.flush()

        for dataset in args.datasets:
            run_cells(dataset, args, classes, log)
            print(f"{dataset} done, {(time.perf_counter() - start) / 60:.1f} min")
        minutes = (time.perf_counter() - start) / 60
        run = {"run": vars(args), "environment": env, "minutes": minutes}
        f.write(json.dumps(run, default=str) + "\n")

    print(f"\n## {len(records)} scores in {minutes:.1f} minutes: {vars(args)}")
    print_summary(pd.DataFrame(records))
    print(f"\nwritten to {out}")


class Rule(NamedTuple):
    """A selection rule for :func:`choose`: the candidate amounts it keeps
    (None: all), the one kept unless another beats it clearly, the test
    (AugmentedClassifier's ``win_share`` and ``min_t``), and how many of the
    recorded inner splits it reads (None: all; 5 of a repeated 5-fold: its
    first repetition)."""

    amounts: tuple | None
    baseline: str
    win_share: float
    min_t: float
    splits: int | None = None


RULES = (
    Rule(None, "0", 0.5, 2.0),  # AugmentedClassifier's default before session 10
    Rule(None, "0", 0.5, 1.0),
    Rule(None, "0", 0.0, 0.0),  # the best mean
    Rule(("0", "balance"), "0", 0.5, 0.5),  # its default since session 10
    Rule(("0", "balance"), "0", 0.5, 1.0),
    Rule(None, "balance", 0.5, 2.0),
    Rule(None, "balance", 0.5, 1.0),
    Rule(None, "balance", 0.0, 1.0),
)


def choose(splits, rule):
    """The candidate (a key of ``splits``, its inner fold scores) that
    AugmentedClassifier's rule (``_clear_winner``) chooses under ``rule`` (a
    :class:`Rule`), among the candidates the rule keeps and over its
    baseline."""
    from augment.augmented import _clear_winner

    baseline = rule.baseline
    if baseline not in splits:  # "balance" is "balance@w1" with weights
        baseline = f"{baseline}@w1"
    keys = [
        key
        for key in splits
        if rule.amounts is None or key.partition("@w")[0] in rule.amounts
    ]
    scores = [splits[key][: rule.splits] for key in keys]
    best = _clear_winner(
        scores, keys.index(baseline), win_share=rule.win_share, min_t=rule.min_t
    )
    return keys[best]


def rule_study(frame, rules=RULES):
    """AugmentedClassifier's choice by other rules (:class:`Rule`), replayed
    from the inner split scores of the "auto" cells: the test score of the
    candidate each rule would choose is that of the same generator's
    "balance" or "enlarge" cell (``--enlarge 2``; ``@w0.5`` cells of
    ``--weights 0.5`` for the candidates of weight 0.5), or real-only for 0;
    rules that would choose a candidate without such a cell are left out of
    that cell. Runs of ``--auto-repeats`` also replay every rule on the
    first repetition (5 splits). Per rule: cells, share beating SMOTE
    (balance), share not below real-only, mean difference to it, its worst
    mean over (predictor, size), share augmented."""
    keys = ["dataset", "rows", "seed", "predictor"]
    scores = frame.drop_duplicates([*keys, "mode", "method"])
    real = scores[scores["method"] == "real"].set_index(keys)["balanced_accuracy"]
    smote = scores[(scores["method"] == "SMOTE") & (scores["mode"] == "balance")]
    smote = smote.set_index(keys)["balanced_accuracy"]
    table = scores.set_index(["method", *keys, "mode"])["balanced_accuracy"]
    modes = {"balance": "balance", "2.0": "enlarge"}
    auto = scores[scores["mode"] == "auto"]
    recorded = [s for s in auto["cv_split_scores"] if isinstance(s, dict)]
    if any(len(next(iter(s.values()))) > 5 for s in recorded):
        rules = [*rules, *(rule._replace(splits=5) for rule in rules)]
    found = []
    for _, cell in auto.iterrows():
        splits = cell.get("cv_split_scores")
        generator = cell["method"].removesuffix("+auto")
        index = tuple(cell[keys])
        if index not in real.index:
            continue
        for rule in rules:
            # a skipped search (a fold with one row of a class) keeps the baseline
            chosen = choose(splits, rule) if isinstance(splits, dict) else rule.baseline
            if chosen == "0":
                value = real[index]
            else:  # "balance", "2.0" (before weights), "balance@w0.5", ...
                amount, _, weight = chosen.partition("@w")
                method = generator if weight in ("", "1") else f"{generator}@w{weight}"
                value = table.get((method, *index, modes[amount]))
            if value is not None:
                found.append(
                    (
                        generator,
                        "all" if rule.amounts is None else "+".join(rule.amounts),
                        rule.baseline,
                        rule.win_share,
                        rule.min_t,
                        rule.splits or "all",
                        *index,
                        value - real[index],
                        value - smote.get(index, np.nan),
                        chosen != "0",
                    )
                )
    if not found:
        return None
    rule = ["method", "amounts", "baseline", "win_share", "min_t", "splits"]
    found = pd.DataFrame(found, columns=[*rule, *keys, "vs_real", "vs_smote", "aug"])
    # first seen first: the splits column mixes 5 and "all", which do not sort
    groups = found.groupby(rule, sort=False)
    worst = found.groupby([*rule, "predictor", "rows"])["vs_real"].mean()
    return pd.DataFrame(
        {
            "cells": groups.size(),
            "beats SMOTE": groups["vs_smote"].apply(lambda d: (d > 0).mean()),
            "not below real": groups["vs_real"].apply(lambda d: (d >= -TIE).mean()),
            "mean vs real": groups["vs_real"].mean(),
            "worst mean": worst.groupby(level=rule).min(),
            "augmented": groups["aug"].mean(),
        }
    )


def print_summary(frame):
    table, both = summarise(frame)
    print("\n## Per method and mode (cells: table x size x seed x predictor)\n")
    print(table.round(3).to_string())
    for column, name in [("rows", "training rows"), ("predictor", "predictor")]:
        print(f"\n## Mean balanced accuracy minus real-only, by {name}\n")
        print(breakdown(both, "vs_real", column).round(3).to_string())
    generated = both[both["method"] != "SMOTE"]
    for column, name in [
        ("rows", "training rows"),
        ("predictor", "predictor"),
        ("dataset", "table"),
    ]:
        print(f"\n## Share of cells above SMOTE, by {name}\n")
        print(breakdown(generated, "beats_smote", column).round(3).to_string())
    rules = rule_study(frame) if "cv_split_scores" in frame else None
    if rules is not None:
        print("\n## AugmentedClassifier replayed with other rules\n")
        print(rules.round(3).to_string())


if __name__ == "__main__":
    main()

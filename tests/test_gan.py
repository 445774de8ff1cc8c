"""TabularGAN: its condition vectors, activations, training mode.

The behaviour it shares with every generator is tested in test_generators.py,
conditions on columns in test_conditions.py.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny

from augment import TabularGAN
from augment.tabular.conditioning import (
    ColumnCondition,
    Conditioning,
    TrainingSampler,
)
from augment.tabular.layout import SpanLayout


@pytest.fixture(scope="module")
def fitted(request):
    """A GAN fitted on the labelled mixed table, shared by the sampling tests."""
    from conftest import mixed_table

    X = mixed_table()
    y = pd.Series(["no"] * 90 + ["yes"] * 40 + ["maybe"] * 20, name="answer")
    return tiny(TabularGAN).fit(X, y), X, y


# ------------------------------------------- conditioning and activations
def test_condition_vector_lines_up_with_every_discrete_column(fitted):
    # a row's condition vector, all values shown, is exactly its discrete
    # one-hots: the offsets are right for every column, not just the first
    gen, X, y = fitted
    data = torch.as_tensor(gen.encoder_.transform(X))
    conditioning = gen.conditioning_
    codes = conditioning.codes_of(data)
    vector = conditioning.vector(codes, torch.ones_like(codes, dtype=torch.bool), None)
    assert conditioning.n_discrete == 5
    torch.testing.assert_close(
        vector[:, : len(conditioning.columns)], data[:, conditioning.columns]
    )
    for j, spec in enumerate(gen._discrete_columns()):
        slots = pd.Index(spec.slots).get_indexer(X[spec.name].astype(object))
        missing = X[spec.name].isna().to_numpy()
        slots[missing] = len(spec.slots) - 1
        np.testing.assert_array_equal(codes[:, j].numpy(), slots)


def _spans():
    from augment.tabular.encoder import Span

    return [
        Span("a", "scalar", 0, 1),
        Span("a", "mode", 1, 3),
        Span("b", "category", 4, 2),
        Span("c", "scalar", 6, 1),
        Span("c", "mode", 7, 1),
        Span("d", "category", 8, 4),
    ]


def test_vectorised_activation_equals_a_loop_over_spans():
    from augment.tabular.gan import _Generator

    spans = _spans()
    layout = SpanLayout(spans)
    data = torch.zeros((6, 12))
    data[:, [0, 6]] = 0.1
    data[:, [1, 4, 7, 8]] = 1.0
    conditioning = Conditioning(spans, data, None, 0)
    module = _Generator(layout, conditioning.width, noise_dim=4, hidden_dims=(8,))
    raw = torch.randn((6, 12), generator=torch.Generator().manual_seed(1))
    out = module.activate(raw, torch.Generator().manual_seed(2))
    # the reference draws the same Gumbel noise, padded to the widest group
    uniform = torch.rand((6, 4, 4), generator=torch.Generator().manual_seed(2))
    gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
    groups = [s for s in spans if s.role != "scalar"]
    for span in spans:
        got = out[:, span.start : span.stop]
        if span.role == "scalar":
            torch.testing.assert_close(got, torch.tanh(raw[:, span.start : span.stop]))
            continue
        noise = gumbel[:, groups.index(span), : span.width]
        logits = (raw[:, span.start : span.stop] + noise) / module.tau
        torch.testing.assert_close(got, torch.softmax(logits, dim=1))


def test_condition_loss_equals_per_column_cross_entropy():
    spans = _spans()
    layout = SpanLayout(spans)
    data = torch.zeros((6, 12))
    data[:, [1, 4, 7, 8]] = 1.0
    conditioning = Conditioning(spans, data, None, 0)
    raw = torch.randn((3, 12), generator=torch.Generator().manual_seed(0))
    codes = torch.tensor([[1, 3], [0, 2], [1, 0]])
    shown = torch.tensor([[True, True], [False, True], [True, False]])
    log_probs = layout.log_probs(raw)
    got = conditioning.loss(log_probs, codes, shown)
    expected = 0.0
    for row, column in shown.nonzero().tolist():
        span = [s for s in spans if s.role == "category"][column]
        logits = raw[row, span.start : span.stop]
        expected -= torch.log_softmax(logits, dim=0)[codes[row, column]]
    torch.testing.assert_close(got, expected / 3)


def test_group_draws_follow_the_softmax():
    layout = SpanLayout(_spans())
    raw = torch.zeros((20_000, 12))
    probs = torch.tensor([0.2, 0.3, 0.5])
    raw[:, 1:4], raw[:, 8:12] = probs.log(), torch.tensor([0.0, 0.0, 0.0, 9.0])
    out = layout.sample_groups(raw, torch.Generator().manual_seed(0), raw.clone())
    groups = [s for s in _spans() if s.role != "scalar"]
    for span in groups:  # exactly one hot entry per group
        assert (out[:, span.start : span.stop].sum(1) == 1).all()
    torch.testing.assert_close(out[:, 1:4].mean(0), probs, atol=0.015, rtol=0)
    assert out[:, 11].mean() > 0.99
    torch.testing.assert_close(out[:, [0, 6]], raw[:, [0, 6]])  # scalars untouched


def test_training_by_sampling_favours_rare_values_and_matches_rows():
    # column 0: value 1 in 5% of rows; labels: class 1 in 10% of rows
    n = 1000
    codes = torch.zeros((n, 2), dtype=torch.long)
    codes[:50, 0] = 1
    codes[:, 1] = torch.arange(n) % 3
    labels = (torch.arange(n) >= 900).long()
    sampler = TrainingSampler(codes, [2, 3], labels, 2, reveal=0.0)
    rows, got, shown = sampler.sample(20_000, torch.Generator().manual_seed(0))
    # every shown value is the row's own value
    torch.testing.assert_close(got, codes[rows])
    chosen_first = shown[:, 0]
    share_rare = (got[chosen_first, 0] == 1).float().mean()
    assert 0.3 < share_rare < 0.42  # log1p(50) / (log1p(50) + log1p(950)) = 0.36
    # at most one value is shown when nothing is revealed; none when the
    # label was the chosen column (a third of the draws)
    assert shown.sum(1).max() == 1
    label_chosen = shown.sum(1) == 0
    assert 0.3 < label_chosen.float().mean() < 0.37
    # then the minority class (10% of rows) is drawn at its log frequency
    share_minority = labels[rows[label_chosen]].float().mean()
    assert 0.35 < share_minority < 0.45  # log1p(100) / (log1p(100) + log1p(900))


def test_unconditional_draws_follow_the_class_frequencies():
    spans = _spans()
    data = torch.zeros((4, 12))
    data[:, [1, 7]] = 1.0
    data[:, 4] = torch.tensor([1.0, 1.0, 1.0, 0.0])  # b: slot 0 three times
    data[:, 5] = 1 - data[:, 4]
    data[:, 8] = 1.0
    labels = torch.tensor([0, 0, 0, 1])  # class 1 always has b in slot 1
    conditioning = Conditioning(spans, data, labels, 2)
    wanted = torch.ones(4000, dtype=torch.long)
    codes, shown = conditioning.draw(wanted, 4000, torch.Generator().manual_seed(0))
    assert (codes[shown[:, 0], 0] == 1).all()
    # one of b, d or the label is chosen uniformly
    assert 0.29 < shown[:, 0].float().mean() < 0.38
    b_is = [ColumnCondition("b", 0, slot, None) for slot in (0, 1)]
    np.testing.assert_allclose(conditioning.class_probs([b_is[1]]), [0.0, 1.0])
    np.testing.assert_allclose(conditioning.class_probs([b_is[0]]), [1.0, 0.0])


# --------------------------------------------------- training and sampling
def test_history_has_both_losses(fitted):
    gen, _, _ = fitted
    assert {"critic", "generator", "condition"} <= set(gen.history_[0])
    assert len(gen.history_) == 3


def test_sampling_runs_in_eval_mode(fitted):
    gen, _, _ = fitted
    module = gen.module_
    assert not module.training
    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    before = [m.running_mean.clone() for m in norms]
    module.train()  # even when left in training mode by someone
    a = gen.sample(30, y="yes")[0]
    assert not module.training
    # batch norm used, and kept, its running statistics
    for m, mean in zip(norms, before, strict=True):
        torch.testing.assert_close(m.running_mean, mean)
    assert len(a) == 30


def test_global_random_state_is_untouched(labelled):
    X, y = labelled
    state = torch.get_rng_state()
    gen = tiny(TabularGAN).fit(X, y)
    gen.sample(20, conditions={"plan": "pro"})
    assert torch.equal(torch.get_rng_state(), state)


def test_conditions_after_pickling(fitted):
    gen, _, _ = fitted
    restored = pickle.loads(pickle.dumps(gen))
    a = restored.sample(10, conditions={"city": "Oslo"})[0]
    b = gen.sample(10, conditions={"city": "Oslo"})[0]
    pd.testing.assert_frame_equal(a, b)


def test_continuous_target_with_conditions(table):
    y = table["age"] * 1.5 + 0.25
    gen = tiny(TabularGAN).fit(table.drop(columns="age"), y)
    X_new, y_new = gen.sample(10, conditions={"plan": "basic"})
    assert (X_new["plan"] == "basic").all() and len(y_new) == 10
    with pytest.raises(ValueError, match="is not a column"):
        gen.sample(5, conditions={"__augment_target__": 1.0})


def test_batch_is_rounded_to_whole_packs(labelled):
    X, y = labelled
    gen = tiny(TabularGAN, batch_size=33, pac=4).fit(X, y)
    assert len(gen.sample(7)[0]) == 7

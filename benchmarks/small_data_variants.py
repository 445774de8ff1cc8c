"""TabularVAE variants screened on the small-data protocol (sessions 12 and 13).

None of them is kept in the package (docs/small_data.rst, "What else was
measured"); they live here so that the screens can be re-run. This script is
``small_data.py`` with these generators added::

    OMP_NUM_THREADS=1 python benchmarks/small_data_variants.py \\
        --datasets credit breast_cancer wage1 structured diamonds \\
        --sizes 50 100 200 --seeds 0 --modes balance --fidelity \\
        --generators TabularVAE DenseVAE SkipVAE BalancedVAE

* ``DenseVAE``: the condition (class and shown values) enters every layer
  of the decoder, not the first only.
* ``SkipVAE``: a learnt linear map from the condition straight to the
  decoder's output (a class term on every column), started at zero.
* ``HeadVAE``: an output layer of the decoder for each class (the layers
  before it shared), all started at the same weights.
* ``BalancedVAE``, ``HalfBalancedVAE``: the minority rows drawn again, with
  replacement, up to the majority's count (or the geometric mean of the
  class's count and the majority's) before the fit.
* ``GuidedVAE0.25``, ``GuidedVAE0.5``, ``GuidedVAE1``: no retraining; at
  sampling, the decoder's output for the class asked for is pushed away from
  its mean over all classes (the same latent code) by that many times their
  difference.
* ``VAEmodes{1,2,3,5,15,20}``: at most that many Gaussian modes per number
  in the encoding (10 by default).
* ``SmoteMix0.5``, ``SmoteMix0.25`` (session 13): that share of each
  class's rows drawn by SMOTE (SMOTENC with categories) from the training
  rows, the rest by the fitted TabularVAE.
"""

import sys

import numpy as np
import pandas as pd
import small_data
import torch
from torch import nn

from augment import TabularVAE
from augment.nn.blocks import init_parameters
from augment.tabular.vae import _ConditionalVAE


class _DenseDecoder(nn.Module):
    """An MLP whose every layer also reads the condition (the last
    ``condition_width`` inputs)."""

    def __init__(self, in_dim, condition_width, hidden, out_dim):
        super().__init__()
        self.condition_width = condition_width
        widths = [in_dim, *(h + condition_width for h in hidden)]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, hidden))
        self.out = nn.Linear(hidden[-1] + condition_width, out_dim)

    def forward(self, x):
        condition = x[:, x.shape[1] - self.condition_width :]
        h = torch.relu(self.hidden[0](x))
        for layer in self.hidden[1:]:
            h = torch.relu(layer(torch.cat([h, condition], 1)))
        return self.out(torch.cat([h, condition], 1))


class _DenseModule(_ConditionalVAE):
    def __init__(self, layout, conditioning, latent_dim, hidden_dims):
        super().__init__(layout, conditioning, latent_dim, hidden_dims)
        self.decoder = _DenseDecoder(
            latent_dim + conditioning.width,
            conditioning.width,
            list(hidden_dims),
            layout.width,
        )


class _SkipModule(_ConditionalVAE):
    def __init__(self, layout, conditioning, latent_dim, hidden_dims):
        super().__init__(layout, conditioning, latent_dim, hidden_dims)
        self.skip = nn.Linear(conditioning.width, layout.width, bias=False)

    def _decode(self, z, condition):
        return super()._decode(z, condition) + self.skip(condition).float()


class _HeadModule(_ConditionalVAE):
    """A decoder whose last layer is the class's own (the layers before it
    shared): one output layer per class, all started at the same weights."""

    def __init__(self, layout, conditioning, latent_dim, hidden_dims):
        super().__init__(layout, conditioning, latent_dim, hidden_dims)
        last = self.decoder[-1]
        k = max(self.n_classes, 1)
        self.heads = nn.Parameter(last.weight.detach().repeat(k, 1, 1))
        self.head_bias = nn.Parameter(last.bias.detach().repeat(k, 1))

    def share_start(self):
        """Every head starts at the shared layer's (redrawn) weights."""
        last = self.decoder[-1]
        with torch.no_grad():
            self.heads.copy_(last.weight.expand_as(self.heads))
            self.head_bias.copy_(last.bias.expand_as(self.head_bias))

    def _decode(self, z, condition):
        h = self.decoder[:-1](self._with(z, condition))
        if not self.n_classes:
            return self.decoder[-1](h).float()
        label = condition[:, -self.n_classes :].argmax(1)
        raw = torch.einsum("nd,nod->no", h, self.heads[label]) + self.head_bias[label]
        return raw.float()


def _guided_module(scale):
    class Guided(_ConditionalVAE):
        def _decode(self, z, condition):
            raw = super()._decode(z, condition)
            if self.training or not self.n_classes:
                return raw
            k, others = self.n_classes, []
            for c in range(k):  # the class one-hot is the condition's tail
                other = condition.clone()
                other[:, -k:] = 0
                other[:, -k + c] = 1
                others.append(super()._decode(z, other))
            return raw + scale * (raw - torch.stack(others).mean(0))

    return Guided


def _with_module(name, module_class):
    def build(self, init):
        settings = self.training_settings_
        module = module_class(
            self._layout(),
            self.conditioning_,
            settings["latent_dim"],
            settings["hidden_dims"],
        )
        self.module_ = init_parameters(module, init)
        if isinstance(module, _SkipModule):  # no class term at the start
            nn.init.zeros_(module.skip.weight)
        if isinstance(module, _HeadModule):
            module.share_start()

    return type(name, (TabularVAE,), {"_build_modules": build})


def _balanced(name, power):
    def fit(self, X, y=None):
        y = pd.Series(np.asarray(y))
        counts = y.value_counts()
        rng = np.random.default_rng(0)
        index = []
        for value, count in counts.items():
            rows = np.flatnonzero(y.to_numpy() == value)
            want = round(count ** (1 - power) * counts.max() ** power)
            index += [*rows, *rng.choice(rows, max(want - count, 0))]
        X = X.iloc[index].reset_index(drop=True)
        return TabularVAE.fit(self, X, y.iloc[index].to_numpy())

    return type(name, (TabularVAE,), {"fit": fit})


def _smote_mix(name, share):
    """TabularVAE's rows with a ``share`` of each class's drawn by SMOTE
    (SMOTENC with categories) from the training rows instead."""

    def fit(self, X, y=None):
        self.training_rows_ = X.assign(_label=np.asarray(y))
        return TabularVAE.fit(self, X, y)

    def sample(self, n_samples, y=None):
        labels = pd.Series(np.asarray(y))
        counts = labels.value_counts()
        by_smote = (counts * share).round().astype(int)
        rest = np.repeat(counts.index.to_numpy(), (counts - by_smote).to_numpy())
        X, y_vae = TabularVAE.sample(self, len(rest), y=rest)
        part = self.training_rows_
        types = small_data.sdtypes(part.drop(columns="_label"))  # as prepare()
        categories = [c for c, t in types.items() if t in ("categorical", "boolean")]
        extra = small_data.smote_rows(
            part,
            "_label",
            categories,
            by_smote.reindex(part["_label"].unique(), fill_value=0),
            self.random_state,
        )
        X_smote = extra.drop(columns="_label").astype(X.dtypes.to_dict())
        return (
            pd.concat([X, X_smote], ignore_index=True),
            np.concatenate([np.asarray(y_vae), extra["_label"].to_numpy()]),
        )

    return type(name, (TabularVAE,), {"fit": fit, "sample": sample})


VARIANTS = {
    "DenseVAE": _with_module("DenseVAE", _DenseModule),
    "SkipVAE": _with_module("SkipVAE", _SkipModule),
    "HeadVAE": _with_module("HeadVAE", _HeadModule),
    "BalancedVAE": _balanced("BalancedVAE", 1.0),
    "HalfBalancedVAE": _balanced("HalfBalancedVAE", 0.5),
    **{
        f"GuidedVAE{g}": _with_module(f"GuidedVAE{g}", _guided_module(g))
        for g in (0.25, 0.5, 1)
    },
    **{
        f"VAEmodes{k}": type(f"VAEmodes{k}", (TabularVAE,), {"_encoder_modes": k})
        for k in (1, 2, 3, 5, 15, 20)
    },
    **{f"SmoteMix{s}": _smote_mix(f"SmoteMix{s}", s) for s in (0.25, 0.5)},
}

if __name__ == "__main__":
    package = small_data.generators
    small_data.generators = lambda: {**package(), **VARIANTS}
    small_data.main(sys.argv[1:])

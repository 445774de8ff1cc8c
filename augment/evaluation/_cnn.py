"""A small convolutional classifier: the evaluation's eye for images."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from ..nn import in_blocks, init_parameters


class SmallCNN(ClassifierMixin, BaseEstimator):
    """A few convolutions, trained briefly on the CPU, behind sklearn's API.

    Trained for a fixed number of minibatch steps rather than epochs, so that
    the evaluation takes the same time on 2,000 or 60,000 images.

    Parameters
    ----------
    n_steps : int, default=300
        Optimiser steps, each on ``batch_size`` images drawn at random.
    batch_size : int, default=64
        Images per step.
    random_state : int or None, default=None
        Seeds a local :class:`torch.Generator` (weights and minibatches).
    """

    def __init__(self, n_steps=300, batch_size=64, random_state=None):
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on float images ``X`` (N, C, H, W) in [0, 1] and labels ``y``."""
        self.classes_, y = np.unique(y, return_inverse=True)
        generator = torch.Generator()
        if self.random_state is None:
            generator.seed()  # fresh entropy, the global state left alone
        else:
            generator.manual_seed(int(self.random_state))
        self.module_ = init_parameters(
            _network(X.shape[1], len(self.classes_)), generator
        )
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=2e-3)
        X, y = torch.as_tensor(X), torch.as_tensor(y)
        self.module_.train()
        for _ in range(self.n_steps):
            batch = torch.randint(len(X), (self.batch_size,), generator=generator)
            loss = nn.functional.cross_entropy(self.module_(X[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        self.module_.eval()
        return self

    @torch.no_grad()
    def _forward(self, X, upto=None):
        layers = self.module_[:upto] if upto else self.module_
        return in_blocks(layers, torch.as_tensor(X), size=1024).numpy()

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        return torch.softmax(torch.as_tensor(self._forward(X)), dim=1).numpy()

    def predict(self, X):
        """The most probable class of each image."""
        return self.classes_[self._forward(X).argmax(axis=1)]

    def features(self, X):
        """The penultimate layer's activations, the space of the Frechet distance."""
        return self._forward(X, upto=-1).astype(np.float64)


def _network(channels, n_classes):
    # any image size: the adaptive pooling fixes the width of the dense layers
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * 16, 64),
        nn.ReLU(),
        nn.Linear(64, n_classes),
    )

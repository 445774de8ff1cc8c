"""Image benchmark: does augmenting a few real images with a generator help?

Protocol
--------
Data (``--dataset``): scikit-learn's digits (1,797 images of 8x8 pixels),
``images / 16`` as float32 in [0, 1], shape (N, 1, 8, 8); or the colour set,
(480, 3, 32, 32): the two photographs scikit-learn ships
(``load_sample_images``) cut into quadrants and the quadrants into
non-overlapping 32x32 tiles, 60 a quadrant, labelled by photograph and
quadrant (8 classes; no labelled colour set is on the machine, and nothing
is downloaded). A stratified 70/30 split with
``random_state=0``; the 30% is the test set, always used whole. From the 70%
training pool, each seed draws ``size`` images per class (5, 10 and 30 by
default). The subsets are nested: a seed permutes each class's pool once and
takes the first ``size`` images, so the 5 are among the 10, the 10 among the 30.

Classifiers, both in torch, both trained for the same number of Adam steps on
minibatches of 64 images drawn with replacement, whatever the condition (more
data never means more training):

- ``logreg``: a logistic regression, one linear layer on the pixels;
- ``cnn``: two 3x3 convolutions (16 and 32 channels), a 2x2 max-pool, an
  average pool to 4x4 (nothing to pool on 8x8 digits) and a linear layer.

Weights, minibatches and augmentations come from local ``torch.Generator``
objects seeded from the seed: nothing is seeded globally. Within a seed, every
condition starts from the same initial weights. The classifiers train on one
thread (on 8x8 images a second only adds overhead, a lot of it when the cores
are busy); the generators fit with ``--threads`` (2).

Conditions, for every (size, seed):

- ``real``: the real images only;
- ``real+classic``: classic augmentation on the fly, for both classifiers:
  each image of each minibatch is, with probability 1/2, shifted by a random
  whole pixel (-1, 0 or +1 on each axis) and rotated by an angle uniform in
  +-12 degrees (bilinear, zero padding, the digits' background; the colour
  tiles are reflected at the borders). So, as for the generators, half of
  what the classifier sees is real and half is
  augmented, and it sees a fresh variant at every step. The logistic
  regression gets the same on-the-fly treatment as the CNN rather than a fixed
  enlarged set: a fixed set would cap the augmentation at a few copies, for no
  saving (8x8 images are transformed in microseconds);
- ``real+<gen>``: the real images plus as many generated images, class by
  class (``gen.sample(n, y=labels)``, exact counts); the generator is fitted
  only on the ``size`` real images per class, with ``random_state=seed``;
- ``real+<gen>x3``: the same with three times as many generated images
  (``--multiples``); sampling is cheap, the generator is fitted once;
- ``real+classic+<gen>``: real plus generated images (x1), every minibatch
  image augmented as in ``real+classic``, generated or not; with a fraction
  ``k < 1`` in ``--multiples``, ``real+classic+<gen>x<k>`` too (fewer
  generated images, say a quarter as many as real ones);
- ``real+classic+<gen>+filter`` (``--filter k``): the same, the generated
  images the most recognised ``1/k`` of ``k`` times as many, class by class:
  those the CNN of ``real+classic`` (trained on the real images only) gives
  the highest probability of their class;
- ``<gen>~c`` (``--confidence c [c ...]``): every generator is fitted with
  ``filter_confidence`` set to the first value (which trains the filter's
  classifier on the real images, with seeds of its own: the model is the
  same as without it), and every condition above is run on its images with
  the filter off (``<gen>``) and at each confidence (``<gen>~c``), from that
  one fit; with ``--timing``, the share recognised of each, and the CPU
  seconds of the filter's classifier, trained again apart;
- ``<gen>~v<s>`` (``--variations s [s ...]``, ImageDiffusion): from the
  same fit, the generated images are variations of the real images
  (``gen.vary(X_real, y_real)`` with ``variation_strength=s``: each real image
  noised to the time ``s`` and denoised; ``none``: from noise, as
  ``<gen>``), each class's real images in turn; ``~g<g>`` (``--guidance``):
  at that ``guidance_scale``;
- ``<gen>@classic`` (``--fit-on-classic k``): every condition above again
  with a generator fitted on the real images and ``k - 1`` classically
  augmented copies of them (every copy shifted and rotated), so that it
  learns the variations too.

Every (size, seed, condition, classifier) gives one JSON line with the test
accuracy. The summary reports, per size, classifier and condition, the mean
and standard deviation of the accuracy over seeds and the paired differences
(same seed, same size) against ``real`` and against ``real+classic``: mean,
standard deviation and wins (the number of seeds where the difference is > 0).

Generator measurements, at 10 images per class (``--metrics-size``), on a
separate draw of 100 generated images per class (``--metric-samples``, drawn
after the images used for training, which they leave unchanged):

- quality: a CNN (the one above, 2,000 steps) trained once on all real images
  of the training pool labels the generated images; the share labelled as the
  class that was asked for (the oracle's own test accuracy is printed too);
- diversity: the mean pairwise Euclidean distance between generated images of
  a class, divided by the same figure for the real images of that class in
  the whole training pool, averaged over classes (1 = as diverse as the real
  digits; near 0 = collapsed);
- copying: the mean distance from a generated image to its nearest real
  training image of the same class, divided by the same figure for the real
  pool images of that class that were not in the training subset (well below
  1 = the generator copies its training images);
- fit time, wall and CPU seconds (``time.process_time``), recorded at every
  size and summarised at 10 per class (100 images).

Timing (``--timing [SIDES]``): the fit of every generator on 100 digits
(10 per class) upscaled to 8x8, 16x16 and 32x32 and on 80 colour tiles,
wall and CPU seconds; ``--params '{"ImageGAN": {"epochs": 100}}'`` runs
fewer steps, and the CPU seconds of a default fit are extrapolated from the
cost of a step (constant along a fit). On the digits, also the share of
100 generated images per class (``--metric-samples``) recognised as their
class: shrunk back to 8x8 (area average) and labelled by the oracle CNN of
the 8x8 digits (``--oracle-steps``); meaningful for full fits only.

Run (about a minute for the real conditions; generator fits dominate)::

    /work/venv/bin/python benchmarks/images.py                    # everything
    /work/venv/bin/python benchmarks/images.py --generators       # real only
    /work/venv/bin/python benchmarks/images.py --sizes 10 --seeds 0 1 \\
        --generators ImageVAE --gen-epochs 200 --filter 3 --fit-on-classic 3
    /work/venv/bin/python benchmarks/images.py --dataset colour --sizes 10
    OMP_NUM_THREADS=1 /work/venv/bin/python benchmarks/images.py --timing

Results are appended as JSON lines to ``benchmarks/results/images.jsonl``
(``"record"``: ``"accuracy"``, ``"generator"`` or ``"timing"``), each with
the environment and
a timestamp; a markdown summary of this run is printed at the end.
"""

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.spatial.distance import cdist, pdist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

RESULTS = Path(__file__).parent / "results"
GENERATORS = ["ImageGAN", "ImageVAE", "ImageDiffusion"]
BATCH_SIZE = 64


# ------------------------------------------------------------------ data
def load(dataset="digits"):
    """``(X_pool, y_pool, X_test, y_test)``, X float32 (N, C, H, W) in [0, 1]:
    ``"digits"`` (N, 1, 8, 8) or ``"colour"`` (N, 3, 32, 32), see
    :func:`colour_patches`."""
    if dataset == "digits":
        digits = load_digits()
        X, y = (digits.images / 16.0).astype(np.float32)[:, None], digits.target
    else:
        X, y = colour_patches()
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    return X_pool, y_pool, X_test, y_test


def colour_patches(side=32):
    """A labelled colour image set from the two photographs scikit-learn ships
    (``load_sample_images``: china.jpg and flower.jpg, 427x640): every
    photograph cut into its four quadrants, every quadrant into
    non-overlapping ``side`` x ``side`` tiles (60 a quadrant at 32), labelled
    by photograph and quadrant: 8 classes of different content (sky, roof,
    petals, leaves ...). Returns X float32 (N, 3, side, side) in [0, 1], y."""
    from sklearn.datasets import load_sample_images

    tiles, labels = [], []
    for p, photo in enumerate(load_sample_images().images):
        height, width = photo.shape[0] // 2, photo.shape[1] // 2
        for q, (top, left) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            quadrant = photo[top * height : (top + 1) * height][
                :, left * width : (left + 1) * width
            ]
            rows, cols = height // side, width // side
            cut = quadrant[: rows * side, : cols * side]
            cut = cut.reshape(rows, side, cols, side, 3).transpose(0, 2, 4, 1, 3)
            tiles.append(cut.reshape(rows * cols, 3, side, side))
            labels.append(np.full(rows * cols, 4 * p + q))
    return (np.concatenate(tiles) / 255).astype(np.float32), np.concatenate(labels)


def upscaled(X, side):
    """Images (N, C, h, w) resized to ``side`` x ``side`` (bilinear)."""
    X = torch.as_tensor(X)
    if X.shape[-1] == side:
        return X.numpy()
    X = nn.functional.interpolate(X, size=(side, side), mode="bilinear")
    return X.clamp(0, 1).numpy()


def per_class_subset(y, size, seed):
    """Indices of ``size`` images per class, nested across sizes for one seed."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(y == c))[:size] for c in np.unique(y)]
    return np.sort(np.concatenate(chosen))


# ----------------------------------------------------------- classifiers
def seeded(seed):
    """A local torch generator, the global random state left alone."""
    return torch.Generator().manual_seed(int(seed))


def make_network(kind, shape, n_classes, generator):
    """The ``logreg`` or ``cnn`` module for images of ``shape`` (C, H, W), its
    weights drawn from ``generator``. The CNN pools to 4x4 before its linear
    layer (on 8x8 images the max-pool alone does)."""
    if kind == "logreg":
        network = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), n_classes))
    elif kind == "cnn":
        network = nn.Sequential(
            nn.Conv2d(shape[0], 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, n_classes),
        )
    else:
        raise ValueError(f"unknown classifier {kind!r}")
    with torch.no_grad():
        for layer in network:
            if isinstance(layer, nn.Linear | nn.Conv2d):
                # torch's default initialisation, from the local generator
                nn.init.kaiming_uniform_(
                    layer.weight, a=math.sqrt(5), generator=generator
                )
                bound = 1 / math.sqrt(layer.weight[0].numel())
                layer.bias.uniform_(-bound, bound, generator=generator)
    return network


def classic_augment(X, generator, rotation=12.0, p=0.5, padding="zeros"):
    """Shift by -1, 0 or +1 pixel per axis and rotate by up to ``rotation``
    degrees, each image of ``X`` (B, 1, H, W) with probability ``p``."""
    n, _, height, width = X.shape
    apply = torch.rand(n, generator=generator) < p
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotation)
    shift = torch.randint(-1, 2, (n, 2), generator=generator).float()
    angle, shift = angle * apply, shift * apply[:, None]
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid's coordinates span [-1, 1] over the image: a pixel is 2 / size
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[:, 0] * 2 / width], dim=1),
            torch.stack([sin, cos, shift[:, 1] * 2 / height], dim=1),
        ],
        dim=1,
    )
    grid = nn.functional.affine_grid(theta, list(X.shape), align_corners=False)
    return nn.functional.grid_sample(
        X, grid, mode="bilinear", padding_mode=padding, align_corners=False
    )


def train_classifier(kind, X, y, seed, steps, augment=False, rotation=12.0):
    """Train ``kind`` for ``steps`` Adam steps on minibatches of ``X`` (N, C, H, W).

    The seed fixes the initial weights, the minibatches and the augmentations
    (three separate generators, so that conditions differ only where they must).
    Runs on one thread: on 8x8 images a second one only adds overhead.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(kind, X, y, seed, steps, augment, rotation)
    finally:
        torch.set_num_threads(threads)


def _train(kind, X, y, seed, steps, augment, rotation):
    network = make_network(kind, X.shape[1:], int(y.max()) + 1, seeded(seed))
    batches, augmentations = seeded(seed + 1_000), seeded(seed + 2_000)
    optimizer = torch.optim.Adam(
        network.parameters(), lr=1e-2 if kind == "logreg" else 2e-3
    )
    X = torch.as_tensor(X, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    # colour tiles: reflect at the borders (black corners would be a cue)
    padding = "zeros" if X.shape[1] == 1 else "reflection"
    network.train()
    for _ in range(steps):
        batch = torch.randint(len(X), (BATCH_SIZE,), generator=batches)
        inputs = X[batch]
        if augment:
            inputs = classic_augment(inputs, augmentations, rotation, padding=padding)
        loss = nn.functional.cross_entropy(network(inputs), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network.eval()


@torch.no_grad()
def predict(network, X):
    return network(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()


def accuracy(network, X, y):
    return float(np.mean(predict(network, X) == y))


# ------------------------------------------------------------ generators
def classic_copies(X, y, copies, seed, rotation=12.0):
    """``X`` and ``copies - 1`` classically augmented copies of it (every
    image shifted and rotated), to fit a generator on."""
    generator = seeded(seed + 3_000)
    X = torch.as_tensor(X, dtype=torch.float32)
    padding = "zeros" if X.shape[1] == 1 else "reflection"
    varied = [
        classic_augment(X, generator, rotation, 1.0, padding) for _ in range(copies - 1)
    ]
    X_all = torch.cat([X, *varied]).clamp(0, 1).numpy()
    return X_all, np.tile(y, copies)


@torch.no_grad()
def recognised(judge, X, y, ratio, keep="most"):
    """Indices of ``1 / ratio`` of each class's images of ``X``, ranked by
    the probability ``judge`` gives their class ``y``: the highest
    (``keep="most"``), or the lowest of those it labels ``y`` (``"least"``:
    the hardest it still gets right, near a class boundary; the images it
    labels otherwise come last)."""
    logits = judge(torch.as_tensor(X, dtype=torch.float32))
    score = logits.log_softmax(1)[torch.arange(len(y)), torch.as_tensor(y)].numpy()
    if keep == "least":
        right = logits.argmax(1).numpy() == y
        score = np.where(right, -score, -np.inf)
    order = np.lexsort((-score, y))  # by class, then the best ranked first
    classes, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    rank = np.arange(len(y)) - np.repeat(starts, counts)
    return np.sort(order[rank < np.repeat(counts // ratio, counts)])


def import_generators(names):
    """The generator classes among ``names`` that can be imported, by name."""
    classes = {}
    for name in names:
        try:
            import augment

            classes[name] = getattr(augment, name)
        except AttributeError:
            print(f"skipping {name}: augment has no {name} yet")
        except Exception as exc:  # a broken augment must not stop the baselines
            print(
                f"skipping {name}: cannot import augment ({type(exc).__name__}: {exc})"
            )
    return classes


def per_class_labels(y, multiple=1):
    """``multiple`` labels per real image, class by class, for ``gen.sample``
    (a fraction: that share of each class's count, rounded)."""
    if multiple >= 1:
        return np.repeat(y, int(multiple))
    classes, counts = np.unique(y, return_counts=True)
    return np.repeat(classes, np.round(multiple * counts).astype(int))


def sample(gen, labels):
    """Generated images (n, C, H, W) float32 for ``labels``, checked for layout."""
    X_new, y_new = gen.sample(len(labels), y=labels)
    X_new = np.asarray(X_new, dtype=np.float32)
    if X_new.shape != (len(labels), *gen.image_shape_):
        raise ValueError(f"sample returned shape {X_new.shape}, not (n, C, H, W)")
    if not np.array_equal(np.sort(np.asarray(y_new)), np.sort(labels)):
        raise ValueError("sample did not return the labels asked for")
    return X_new, np.asarray(y_new)


def varied(gen, X_real, y_real, labels, sources="real", seed=0):
    """Variations (``gen.vary``) for ``labels``: of each class's real images
    in turn (``sources="real"``), of classically augmented copies of them
    (``"classic"``: shifted and rotated), or of blends of two real images of
    the class (``"mix"``: ``l a + (1 - l) b``, ``l`` uniform in [0.3, 0.7],
    ``b`` the image ``k`` turns later, ``k`` drawn per row)."""
    from augment.image.diffusion import _turns

    rng = np.random.default_rng(seed + 4_000)
    # the real image each row varies: ImageDiffusion's own turns (both
    # data sets' classes, 0 to k - 1, are their class indices)
    index = _turns(y_real, labels, len(y_real), len(labels))
    partner = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        rows, own = np.flatnonzero(labels == c), np.flatnonzero(y_real == c)
        later = np.arange(len(rows)) + rng.integers(1, len(own), size=len(rows))
        partner[rows] = own[later % len(own)]
    X_src = X_real[index]
    if sources == "classic":
        X_src = classic_augment(
            torch.as_tensor(X_src), seeded(seed + 5_000), p=1.0
        ).clamp(0, 1)
        X_src = X_src.numpy()
    elif sources == "mix":
        share = rng.uniform(0.3, 0.7, size=(len(labels), 1, 1, 1))
        X_src = (share * X_src + (1 - share) * X_real[partner]).astype(np.float32)
    X_new, y_new = gen.vary(X_src, y_real[index])
    return np.asarray(X_new, dtype=np.float32), np.asarray(y_new)


def last_epoch(gen):
    """The number of epochs run and the last epoch's losses, from ``history_``."""
    history = getattr(gen, "history_", None)
    if not isinstance(history, list) or not history:
        return {}
    try:
        losses = {k: float(v) for k, v in history[-1].items()}
    except (AttributeError, TypeError, ValueError):
        losses = {}
    return {"epochs_run": len(history), "last_epoch": losses}


def generator_metrics(X_gen, y_gen, oracle, X_pool, y_pool, train_idx):
    """Quality, diversity and copying of generated images (see the docstring)."""
    quality = float(np.mean(predict(oracle, X_gen) == y_gen))
    diversity, copying = [], []
    in_train = np.zeros(len(y_pool), dtype=bool)
    in_train[train_idx] = True
    pixels = int(np.prod(X_pool.shape[1:]))
    for c in np.unique(y_pool):
        gen = X_gen[y_gen == c].reshape(-1, pixels)
        real = X_pool[y_pool == c].reshape(-1, pixels)
        diversity.append(pdist(gen).mean() / pdist(real).mean())
        train = X_pool[(y_pool == c) & in_train].reshape(-1, pixels)
        held_out = X_pool[(y_pool == c) & ~in_train].reshape(-1, pixels)
        nearest_gen = cdist(gen, train).min(axis=1).mean()
        nearest_real = cdist(held_out, train).min(axis=1).mean()
        copying.append(nearest_gen / nearest_real)
    return {
        "quality": quality,
        "diversity_ratio": float(np.mean(diversity)),
        "copying_ratio": float(np.mean(copying)),
    }


# ------------------------------------------------------------------ runs
def run_size_seed(size, seed, data, generators, oracle, args, record):
    """Every condition and classifier for one (size, seed); results to ``record``."""
    X_pool, y_pool, X_test, y_test = data
    idx = per_class_subset(y_pool, size, seed)
    X_real, y_real = X_pool[idx], y_pool[idx]
    common = {"dataset": args.dataset, "size": size, "seed": seed, "n_real": len(idx)}

    def evaluate(condition, X, y, augment, n_generated=0):
        networks = {}
        for kind in args.classifiers:
            wall = time.perf_counter()
            network = networks[kind] = train_classifier(
                kind, X, y, seed, args.steps, augment, args.rotation
            )
            record(
                "accuracy",
                common,
                condition=condition,
                classifier=kind,
                n_generated=n_generated,
                accuracy=accuracy(network, X_test, y_test),
                train_seconds=time.perf_counter() - wall,
            )
        return networks

    evaluate("real", X_real, y_real, augment=False)
    judges = evaluate("real+classic", X_real, y_real, augment=True)
    # the filter's judge: the CNN trained on the real images (classic
    # augmentation), the best classifier one has without generated images
    judge = judges.get("cnn") or train_classifier(
        "cnn", X_real, y_real, seed, args.steps, True, args.rotation
    )

    def run_generator(gen, name, params, fit):
        # with --confidence, the generator was fitted with the filter: its
        # images with the filter off, then at every confidence asked for;
        # with --variations and --guidance, at every strength and guidance
        variants = [(None, "real", None)]
        if hasattr(gen, "vary") and (args.variations or args.guidance):
            variants = [
                (strength, source, guidance)
                for strength in args.variations or [None]
                for source in (args.sources if strength is not None else ["real"])
                for guidance in args.guidance or [None]
            ]
        for confidence in [None, *args.confidence] if args.confidence else [None]:
            if args.confidence:
                gen.set_params(filter_confidence=confidence)
            for strength, source, guidance in variants:
                tag = "" if confidence is None else f"~{confidence:g}"
                shown = {**params, "filter_confidence": confidence}
                if strength is not None or args.variations:
                    gen.set_params(variation_strength=strength)
                    shown["variation_strength"] = strength
                    if strength is not None:
                        tag += f"~v{strength:g}"
                        if source != "real":
                            tag += f"-{source}"
                            shown["sources"] = source
                if guidance is not None:
                    gen.set_params(guidance_scale=guidance)
                    shown["guidance_scale"] = guidance
                    tag += f"~g{guidance:g}"
                sources[0] = source
                run_variant(gen, f"{name}{tag}", shown, fit)

    sources = ["real"]  # what draw varies, set per variant

    def draw(gen, labels):
        # variations of the real images (vary) when a strength is set, else
        # samples from noise
        if getattr(gen, "variation_strength", None) is None:
            return sample(gen, labels)
        return varied(gen, X_real, y_real, labels, sources[0], seed)

    def run_variant(gen, name, params, fit):
        samples = {k: draw(gen, per_class_labels(y_real, k)) for k in args.multiples}
        for k, (X_gen, y_gen) in samples.items():
            X = np.concatenate([X_real, X_gen])
            y = np.concatenate([y_real, y_gen])
            suffix = "" if k == 1 else f"x{k:g}"
            evaluate(f"real+{name}{suffix}", X, y, False, len(y_gen))
            if k <= 1:  # fewer generated images: classic augmentation too
                evaluate(f"real+classic+{name}{suffix}", X, y, True, len(y_gen))
        if args.filter:
            # as many images as real ones, the most (or least) confidently
            # recognised of args.filter times as many candidates
            X_gen, y_gen = draw(gen, per_class_labels(y_real, args.filter))
            for order in args.filter_keep:  # from the same candidates
                keep = recognised(judge, X_gen, y_gen, args.filter, order)
                X = np.concatenate([X_real, X_gen[keep]])
                y = np.concatenate([y_real, y_gen[keep]])
                tag = "+filter" if order == "most" else "+filter-least"
                evaluate(f"real+classic+{name}{tag}", X, y, True, len(keep))
        metrics = {}
        if size == args.metrics_size:
            labels = np.repeat(np.unique(y_pool), args.metric_samples)
            X_gen, y_gen = draw(gen, labels)
            metrics = generator_metrics(X_gen, y_gen, oracle, X_pool, y_pool, idx)
        record(
            "generator",
            common,
            generator=name,
            params=params,
            **last_epoch(gen),
            **fit,
            **metrics,
        )

    for name, cls in generators.items():
        params = {**args.params.get(name, {}), "random_state": seed, "verbose": 0}
        if args.confidence:
            params["filter_confidence"] = args.confidence[0]
        if args.gen_epochs:
            params["epochs"] = args.gen_epochs
        fit_on = {"": (X_real, y_real)}
        if args.fit_on_classic:
            fit_on["@classic"] = classic_copies(
                X_real, y_real, args.fit_on_classic, seed, args.rotation
            )
        for tag, (X_fit, y_fit) in fit_on.items():
            gen = cls(**params)
            wall, cpu = time.perf_counter(), time.process_time()
            gen.fit(X_fit, y_fit)
            fit = {
                "fit_seconds": time.perf_counter() - wall,
                "fit_cpu_seconds": time.process_time() - cpu,
            }
            run_generator(gen, f"{name}{tag}", params, fit)


def timing(generators, args, record):
    """Fit every generator with its defaults (or ``--params``) on 100 digits
    (10 per class, seed 0) upscaled to each of ``args.timing`` sides, and on
    80 colour tiles (10 per class); wall and CPU seconds, and the CPU seconds
    of the default number of steps (a step costs the same all along: fewer
    ``epochs`` in ``--params`` measure it sooner)."""
    X_pool, y_pool, _, _ = load("digits")
    idx = per_class_subset(y_pool, 10, 0)
    sets = [("digits", side, upscaled(X_pool[idx], side)) for side in args.timing]
    X_col, y_col, _, _ = load("colour")
    col = per_class_subset(y_col, 10, 0)
    if not args.no_colour:
        sets.append(("colour", 32, X_col[col]))
    # the judge of the digits: the 8x8 oracle, on generated images shrunk
    # back to 8x8 (the upscaled digits hold no more than the 8x8 ones)
    oracle = train_classifier("cnn", X_pool, y_pool, 0, args.oracle_steps)
    rows = []
    for dataset, side, X in sets:
        y = y_pool[idx] if dataset == "digits" else y_col[col]
        for name, cls in generators.items():
            params = {**args.params.get(name, {}), "random_state": 0}
            if args.confidence:
                params["filter_confidence"] = args.confidence[0]
            gen = cls(**params)
            wall, cpu = time.perf_counter(), time.process_time()
            gen.fit(X, y)
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            steps = len(gen.history_) * max(len(y) // gen.batch_size, 1)
            filter_cpu = None
            if args.confidence:  # what the filter's classifier cost: trained again
                filter_cpu = time.process_time()
                refit_filter(gen, X, y)
                filter_cpu = time.process_time() - filter_cpu
            for confidence in [None, *args.confidence]:
                gen.set_params(filter_confidence=confidence)
                recognised = sample_cpu = None
                if dataset == "digits":
                    labels = np.repeat(np.unique(y), args.metric_samples)
                    sample_cpu = time.process_time()
                    X_gen, _ = sample(gen, labels)
                    sample_cpu = time.process_time() - sample_cpu
                    small = nn.functional.adaptive_avg_pool2d(torch.as_tensor(X_gen), 8)
                    recognised = float(np.mean(predict(oracle, small) == labels))
                model_cpu = cpu - (filter_cpu or 0)
                rows.append(
                    record(
                        "timing",
                        {"dataset": dataset, "side": side, "n_real": len(y)},
                        generator=name,
                        filter_confidence=confidence,
                        steps_run=steps,
                        fit_seconds=wall,
                        fit_cpu_seconds=cpu,
                        filter_cpu_seconds=filter_cpu,
                        default_steps=gen._budget_steps(),  # for this image size
                        default_fit_cpu_seconds=model_cpu / steps * gen._budget_steps()
                        + (filter_cpu or 0),
                        sample_cpu_seconds=sample_cpu,
                        recognised=recognised,
                    )
                )
    frame = pd.DataFrame(rows).set_index(
        ["dataset", "side", "generator", "filter_confidence"]
    )
    columns = ["steps_run", "fit_seconds", "fit_cpu_seconds", "filter_cpu_seconds"]
    columns += ["default_fit_cpu_seconds", "sample_cpu_seconds", "recognised"]
    print(show(frame[columns].round(3)))


def refit_filter(gen, X, y):
    """Train the filter's classifier of a fitted ``gen`` again, as its fit
    did (the same seeds: the same weights), to time it apart."""
    images = torch.as_tensor(gen._input_format.encode(np.asarray(X, np.float32)))
    labels = torch.as_tensor(gen._class_index(np.asarray(y)), dtype=torch.long)
    gen._fit_conditioning(images, labels)


def environment():
    import sklearn

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),  # generators; classifiers: 1
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "machine": platform.machine(),
    }
    try:
        import augment

        env["augment"] = augment.__version__
    except Exception:
        pass
    return env


# --------------------------------------------------------------- summary
def show(frame):
    try:
        return frame.to_markdown()
    except ImportError:  # pandas needs tabulate for markdown
        return frame.to_string()


def paired(frame, baseline):
    """Per (size, classifier, condition): differences to ``baseline``, same seed."""
    acc = frame.pivot_table(
        index=["size", "classifier", "seed"], columns="condition", values="accuracy"
    )
    if baseline not in acc:
        return {}
    out = {}
    for condition in acc.columns:
        if condition in (baseline, "real"):  # real vs real+classic: shown once
            continue
        diff = (acc[condition] - acc[baseline]).dropna()
        for (size, kind), d in diff.groupby(level=["size", "classifier"]):
            std = d.std() if len(d) > 1 else float("nan")
            out[size, kind, condition] = (
                f"{d.mean():+.3f} ± {std:.3f} ({int((d > 0).sum())}/{len(d)})"
            )
    return out


def summarise(results):
    frame = pd.DataFrame([r for r in results if r["record"] == "accuracy"])
    if frame.empty:
        return
    order = list(dict.fromkeys(frame["condition"]))
    table = (
        frame.groupby(["size", "classifier", "condition"], sort=False)["accuracy"]
        .agg(["mean", "std", "count"])
        .rename(columns={"count": "seeds"})
    )
    for baseline in ["real", "real+classic"]:
        diffs = paired(frame, baseline)
        table[f"vs {baseline} (wins)"] = [diffs.get(i, "") for i in table.index]
    table = table.reset_index()
    table["condition"] = pd.Categorical(table["condition"], order, ordered=True)
    table = table.sort_values(["size", "classifier", "condition"])
    print("\nTest accuracy; differences are paired (mean ± std over seeds, wins)\n")
    print(show(table.round(3).set_index("size")))

    gens = pd.DataFrame([r for r in results if r["record"] == "generator"])
    if gens.empty:
        return
    columns = ["fit_seconds", "fit_cpu_seconds", "quality"]
    columns += ["diversity_ratio", "copying_ratio"]
    columns = [c for c in columns if c in gens]
    print("\nGenerators (mean over seeds; quality and ratios at the metrics size)\n")
    print(
        show(
            gens.groupby(["size", "generator"])[columns]
            .mean()
            .round(3)
            .reset_index()
            .set_index("size")
        )
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", default="digits", choices=["digits", "colour"])
    parser.add_argument(
        "--timing",
        nargs="*",
        type=int,
        default=None,
        help="only time default fits on 100 digits upscaled to these sides "
        "(8 16 32 if none given) and on the colour set",
    )
    parser.add_argument(
        "--no-colour", action="store_true", help="--timing: the digits only"
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[5, 10, 30])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--generators",
        nargs="*",
        default=GENERATORS,
        choices=GENERATORS,
        help="none: the real and real+classic conditions only",
    )
    parser.add_argument(
        "--classifiers", nargs="+", default=["logreg", "cnn"], choices=["logreg", "cnn"]
    )
    parser.add_argument("--steps", type=int, default=500, help="optimiser steps")
    parser.add_argument("--rotation", type=float, default=12.0, help="degrees")
    parser.add_argument(
        "--multiples",
        nargs="+",
        type=float,
        default=[1, 3],
        help="generated images per real image, for real+<gen>x<k>; a fraction "
        "k < 1 also gives real+classic+<gen>x<k>",
    )
    parser.add_argument("--gen-epochs", type=int, default=None, help="override")
    parser.add_argument(
        "--filter",
        type=int,
        default=0,
        help="k: also real+classic+<gen>+filter, the most recognised 1/k of "
        "k generated images per real image (0: off)",
    )
    parser.add_argument(
        "--filter-keep",
        nargs="+",
        default=["most"],
        choices=["most", "least"],
        help="--filter: keep the most confidently recognised candidates, and/or "
        "the least confidently of those recognised (near a class boundary; "
        "<gen>+filter-least), from the same candidates",
    )
    parser.add_argument(
        "--confidence",
        nargs="*",
        type=float,
        default=[],
        help="fit every generator with filter_confidence set to the first value "
        "and report its images with the filter off (<gen>) and at each value "
        "(<gen>~<value>), from the same fit",
    )
    parser.add_argument(
        "--fit-on-classic",
        type=int,
        default=0,
        help="k: also fit every generator on the real images and k-1 "
        "classically augmented copies (<gen>@classic; 0: off)",
    )
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help='generator parameters, e.g. \'{"ImageGAN": {"diversity_weight": 0}}\'',
    )
    parser.add_argument(
        "--variations",
        nargs="*",
        type=lambda v: None if v == "none" else float(v),
        default=[],
        help="for generators with vary (ImageDiffusion): the conditions at "
        "each variation_strength (<gen>~v<s>: variations of the real images, "
        "from one fit; 'none': from noise)",
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        default=["real"],
        choices=["real", "classic", "mix"],
        help="with --variations: what is varied (real images; classically "
        "augmented copies; blends of two real images of a class)",
    )
    parser.add_argument(
        "--guidance",
        nargs="*",
        type=float,
        default=[],
        help="for generators with vary: the conditions at each guidance_scale "
        "(<gen>~g<g>, from the same fit)",
    )
    parser.add_argument("--metrics-size", type=int, default=10)
    parser.add_argument("--metric-samples", type=int, default=100, help="per class")
    parser.add_argument("--oracle-steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "images.jsonl"))
    args = parser.parse_args()
    if 1 not in args.multiples:
        args.multiples = [1, *args.multiples]

    torch.set_num_threads(args.threads)
    data = load(args.dataset)
    generators = import_generators(args.generators)
    print(f"generators: {', '.join(generators) or 'none (real, real+classic only)'}")
    env = environment()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []

    def record(kind, common, **fields):
        result = {"record": kind, **common, **fields, "steps": args.steps}
        result.update(env, time=time.strftime("%Y-%m-%d %H:%M:%S"))
        results.append(result)
        with open(out, "a") as f:
            f.write(json.dumps(result) + "\n")
        shown = {k: v for k, v in result.items() if k not in env and k != "time"}
        print(json.dumps(shown), flush=True)
        return result

    if args.timing is not None:
        args.timing = args.timing or [8, 16, 32]
        timing(generators, args, record)
        return
    oracle = None
    if generators and args.metrics_size in args.sizes:
        X_pool, y_pool, X_test, y_test = data
        oracle = train_classifier("cnn", X_pool, y_pool, 0, args.oracle_steps)
        print(f"oracle CNN test accuracy: {accuracy(oracle, X_test, y_test):.3f}")
    for size in args.sizes:
        for seed in args.seeds:
            run_size_seed(size, seed, data, generators, oracle, args, record)
    summarise(results)


if __name__ == "__main__":
    main()

"""
Enlarging a small image set with class-conditional generators
==============================================================

With ten images of each digit, can generated images help a classifier?
:class:`~augment.ImageGAN` and :class:`~augment.ImageVAE` learn the ten
images of every class, conditionally on the class, and then draw as many new
images of any class as asked for: exactly that many, of exactly that class.

We train both on 100 of scikit-learn's 8x8 digits, show real and generated
images side by side (saved as ``digits_augmented.png``), and compare a
classifier trained on the real images alone with one trained on the real and
generated images together, inside an imbalanced-learn pipeline. See
``benchmarks/images.py`` for the measured protocol (several sizes and seeds,
a CNN, classic augmentation).
"""

# %%
# Ten training images per class; the rest of the set is for testing. The
# images are (N, 8, 8) floats in [0, 1]: the generators give back the same
# layout and dtype (uint8 or channels-last colour images work the same way).
import matplotlib.pyplot as plt
import numpy as np
from imblearn.pipeline import make_pipeline
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from augment import ImageGAN, ImageVAE

digits = load_digits()
X, y = digits.images / 16, digits.target
rng = np.random.default_rng(0)
train = np.concatenate(
    [rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in range(10)]
)
test = np.setdiff1d(np.arange(len(y)), train)
X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
print(X_train.shape, X_train.dtype, np.bincount(y_train))

# %%
# Downstream: a logistic regression on the pixels, without and with a
# generator in front of it. ``enlarge=2.0`` doubles the training set with
# generated images in the class proportions; the pipeline adds them while
# fitting only, never when predicting. Each generator takes well under a
# minute on a laptop CPU.
flatten = FunctionTransformer(lambda images: images.reshape(len(images), -1))
pipelines = {"real only": make_pipeline(flatten, LogisticRegression(max_iter=2000))}
for cls in (ImageGAN, ImageVAE):
    pipelines[cls.__name__] = make_pipeline(
        cls(enlarge=2.0, random_state=0), flatten, LogisticRegression(max_iter=2000)
    )
for name, pipe in pipelines.items():
    accuracy = pipe.fit(X_train, y_train).score(X_test, y_test)
    print(f"{name:>10}: test accuracy {accuracy:.3f}")

# %%
# The fitted generators draw any number of images of any class: here ten of
# every digit. A grid per class: three real training images, then generated
# ones.
wanted = np.repeat(np.arange(10), 10)
samples = {
    name: pipelines[name][0].sample(100, y=wanted)[0]
    for name in ("ImageGAN", "ImageVAE")
}
fig, axes = plt.subplots(10, 13, figsize=(8, 6.5))
for c in range(10):
    row = [*X_train[y_train == c][:3], None]
    row += [*samples["ImageGAN"][wanted == c][:5]]
    row += [*samples["ImageVAE"][wanted == c][:4]]
    for ax, image in zip(axes[c], row, strict=True):
        ax.axis("off")
        if image is not None:
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
titles = ["real", "ImageGAN", "ImageVAE"]
for ax, title in zip(axes[0, [1, 6, 10]], titles, strict=True):
    ax.set_title(title, fontsize=9)
fig.tight_layout()
fig.savefig("digits_augmented.png", dpi=100)

# %%
# One split and one seed say little: ``benchmarks/images.py`` repeats this
# over seeds and sizes, with a CNN and with classic augmentation, and reports
# paired differences.

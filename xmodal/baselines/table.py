"""Table baselines: logistic regression and gradient boosting (as benchmarks/bench_table.py runs them).

X: a pandas DataFrame; numeric columns are read as numbers, every other column as
categories. Each function returns probabilities (n_test, n_classes), columns in
np.unique(y_train) order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xmodal.baselines import in_class_order
from xmodal.errors import DataError


def _columns(X_train, X_test) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """(train, test, numeric columns, categorical columns); the test frame in the training
    columns' order. Numeric: a numeric dtype in the training frame (bool too)."""
    if not isinstance(X_train, pd.DataFrame) or not isinstance(X_test, pd.DataFrame):
        raise DataError("table baselines take pandas DataFrames (numeric and string columns)")
    if missing := [c for c in X_train.columns if c not in X_test.columns]:
        raise DataError(f"the test table lacks the training columns {missing}")
    numeric = [c for c in X_train.columns if pd.api.types.is_numeric_dtype(X_train[c])]
    categorical = [c for c in X_train.columns if c not in numeric]
    # Categories as strings (a NaN stays missing), so mixed cells sort and encode.
    train, test = X_train.copy(), X_test[list(X_train.columns)].copy()
    for frame in (train, test):
        for c in categorical:
            frame[c] = frame[c].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    return train, test, numeric, categorical


def logistic_model(numeric: list[str], categorical: list[str]):
    """Standardised numeric (missing cells at the training median) + one-hot categorical
    (unseen categories all-zero) -> LogisticRegression(max_iter=2000)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return make_pipeline(
        ColumnTransformer([("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]),
        LogisticRegression(max_iter=2000))


def hgb_model(numeric: list[str], categorical: list[str], seed: int):
    """Numeric passthrough + ordinal-coded categorical (unseen: -1) -> HistGradientBoostingClassifier
    with native categorical support; missing cells are handled natively."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    return make_pipeline(
        ColumnTransformer([("num", "passthrough", numeric),
                           ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical)]),
        HistGradientBoostingClassifier(categorical_features=list(range(len(numeric), len(numeric) + len(categorical))),
                                       random_state=seed))


def logistic(X_train: pd.DataFrame, y_train, X_test: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """One-hot + standardised numeric logistic regression (deterministic: `seed` is unused)."""
    train, test, numeric, categorical = _columns(X_train, X_test)
    model = logistic_model(numeric, categorical).fit(train, np.asarray(y_train))
    return in_class_order(model.predict_proba(test), model.classes_, y_train)


def hgb(X_train: pd.DataFrame, y_train, X_test: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """HistGradientBoostingClassifier, native categorical support, random_state=seed."""
    train, test, numeric, categorical = _columns(X_train, X_test)
    model = hgb_model(numeric, categorical, seed).fit(train, np.asarray(y_train))
    return in_class_order(model.predict_proba(test), model.classes_, y_train)


FIT_PREDICT = {"logistic": logistic, "hgb": hgb}

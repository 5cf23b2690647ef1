"""Series baselines: MiniRocket, and a linear probe of the frozen speech model.

X: a (n, length) float array (a (n, 1, length) univariate panel is accepted too).
Each function returns probabilities (n_test, n_classes), columns in np.unique(y_train) order.
"""

from __future__ import annotations

import numpy as np

from xmodal.baselines import in_class_order
from xmodal.errors import DataError


def _panel(X, what: str) -> np.ndarray:
    """(n, length) float64 from a 2-D array or a univariate (n, 1, length) panel."""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0, :]
    if x.ndim != 2:
        raise DataError(f"{what} series must be a (n, length) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{what} series hold NaN or infinite values")
    return x


def minirocket(X_train, y_train, X_test, seed: int = 0) -> np.ndarray:
    """sktime MiniRocket + StandardScaler(with_mean=False) + RidgeClassifierCV(alphas 1e-3..1e3):
    the standard recipe, as benchmarks/ucr.py runs it.

    RidgeClassifierCV has no predict_proba: the probabilities are the softmax of its decision
    function (for two classes, of (-d, d)). They rank the test samples as the ridge scores do
    (so ROC-AUC is the ridge's) and their argmax is RidgeClassifierCV.predict, but they are
    not calibrated.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.panel.rocket import MiniRocket

    import torch

    x_train, x_test = _panel(X_train, "training")[:, None, :], _panel(X_test, "test")[:, None, :]
    threads = torch.get_num_threads()  # sktime's MiniRocket (numba) raises torch's thread count: put back
    try:
        # The steps by hand: scikit-learn >= 1.8's Pipeline sets callback state that sktime
        # transformers do not carry.
        transform = MiniRocket(random_state=seed).fit(x_train)
        features_train = np.asarray(transform.transform(x_train))
        features_test = np.asarray(transform.transform(x_test))
    finally:
        torch.set_num_threads(threads)
    scaler = StandardScaler(with_mean=False)
    ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))
    ridge.fit(scaler.fit_transform(features_train), np.asarray(y_train))
    scores = ridge.decision_function(scaler.transform(features_test))
    if scores.ndim == 1:  # two classes: d > 0 means classes_[1]
        scores = np.column_stack([-scores, scores])
    scores = scores - scores.max(axis=1, keepdims=True)
    proba = np.exp(scores)
    proba /= proba.sum(axis=1, keepdims=True)
    return in_class_order(proba, ridge.classes_, y_train)


def probe(X_train, y_train, X_test, seed: int = 0) -> np.ndarray:
    """Logistic regression (C chosen by LogisticRegressionCV, log-loss on stratified folds) on
    the frozen BC-ResNet's statistics of every layer, the series (and its slope) played as the
    pitch of two tones: the "tones" series preset with no training (epochs=0), whose head
    starts as exactly this probe, fitted on all training series.
    """
    from xmodal.estimators.series import V2SClassifier

    x_train, x_test = _panel(X_train, "training"), _panel(X_test, "test")
    classifier = V2SClassifier("tones", epochs=0, random_state=seed).fit(x_train[:, None, :], np.asarray(y_train))
    proba = classifier.predict_proba(x_test[:, None, :])
    return in_class_order(proba, classifier.classes_, y_train)



FIT_PREDICT = {"minirocket": minirocket, "probe": probe}

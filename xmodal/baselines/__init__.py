"""Baselines: the classical models a reprogrammed run is compared with, on the same split.

    fit_predict("series", "minirocket", X_train, y_train, X_test, seed=0)   # (n_test, n_classes)

One module per task; every baseline returns probabilities of the test samples, one
column per class in `np.unique(y_train)` order:

  series    minirocket   sktime MiniRocket + StandardScaler + RidgeClassifierCV
                         (softmax of the ridge decision function: see series.py)
            probe        logistic regression (C by LogisticRegressionCV) on the frozen
                         BC-ResNet's layer statistics of the series played as tones
            best+minirocket  a hybrid (MiniRocket's features inside: not reprogramming): the
                         best preset's log-probabilities averaged with a logistic probe's of
                         MiniRocket's features
  sequence  composition  logistic regression on amino-acid + dipeptide frequencies
                         (protein), nucleotide + dinucleotide frequencies (dna) or
                         Morgan fingerprints (smiles)
            cnn          a small CNN trained from scratch on one-hot tokens
  table     logistic     logistic regression on standardised numeric + one-hot categorical
            hgb          HistGradientBoostingClassifier with native categorical support

Inputs: series a (n, length) float array; sequences a list of str (`alphabet`
"protein" (default), "dna" or "smiles"); tables a pandas DataFrame of numeric and
string columns.
"""

from __future__ import annotations

import numpy as np

from xmodal.errors import DataError

BASELINES = {"series": ("minirocket", "probe", "best+minirocket"), "sequence": ("composition", "cnn"),
             "table": ("logistic", "hgb")}


def _function(task: str, name: str):
    if task not in BASELINES:
        raise DataError(f"unknown task {task!r}; baselines exist for {', '.join(BASELINES)}")
    if name not in BASELINES[task]:
        raise DataError(f"unknown {task} baseline {name!r}; choose from {', '.join(BASELINES[task])}")
    if task == "series":
        from xmodal.baselines import series as module
    elif task == "sequence":
        from xmodal.baselines import sequence as module
    else:
        from xmodal.baselines import table as module
    return module.FIT_PREDICT[name]


def fit_predict(task: str, name: str, X_train, y_train, X_test, seed: int = 0, *,
                alphabet: str | None = None) -> np.ndarray:
    """Fit baseline `name` of `task` on (X_train, y_train); probabilities of X_test,
    shape (n_test, n_classes), columns in np.unique(y_train) order.

    alphabet: sequences only ("protein" when None, "dna", "smiles"); ignored otherwise.
    Unknown task or name -> DataError listing the choices.
    """
    function = _function(task, name)
    y_train = np.asarray(y_train)
    if len(y_train) != len(X_train):
        raise DataError(f"{len(X_train)} training samples but {len(y_train)} labels")
    if len(X_test) == 0:
        raise DataError("no test samples to predict")
    if np.unique(y_train).size < 2:
        raise DataError(f"the training labels hold a single class ({np.unique(y_train).tolist()}); "
                        "a classifier needs at least 2")
    if task == "sequence":
        return function(list(X_train), y_train, list(X_test), seed, alphabet=alphabet or "protein")
    return function(X_train, y_train, X_test, seed)


def in_class_order(proba: np.ndarray, model_classes, y_train) -> np.ndarray:
    """`proba`'s columns (one per entry of model_classes) reordered to np.unique(y_train)."""
    classes = np.unique(np.asarray(y_train))
    position = {str(c): i for i, c in enumerate(np.asarray(model_classes))}
    return np.asarray(proba, dtype=np.float64)[:, [position[str(c)] for c in classes]]

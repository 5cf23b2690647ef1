"""Classification scores from predicted probabilities: accuracy, ROC-AUC, MCC."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import matthews_corrcoef, roc_auc_score


def classification_scores(y_true, probabilities: np.ndarray, classes) -> dict:
    """{"accuracy", "roc_auc", "mcc"}; ROC-AUC is one-vs-rest (macro over the classes
    present in y_true) for more than two classes and None when the labels hold a single
    class (it is undefined)."""
    y_true, classes = np.asarray(y_true), np.asarray(classes)
    predicted = classes[np.argmax(probabilities, axis=1)]
    present = np.unique(y_true)
    if len(present) < 2:
        roc_auc = None
    elif len(classes) == 2:
        roc_auc = float(roc_auc_score(y_true == classes[1], probabilities[:, 1]))
    else:  # one-vs-rest, macro over the classes present: an absent class has no positives to rank
        present_set = set(present.tolist())
        roc_auc = float(np.mean([roc_auc_score(y_true == c, probabilities[:, i])
                                 for i, c in enumerate(classes) if c in present_set]))
    return {"accuracy": float(np.mean(predicted == y_true)), "roc_auc": roc_auc,
            "mcc": float(matthews_corrcoef(y_true.astype(str), predicted.astype(str)))}

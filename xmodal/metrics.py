"""Scores from predicted probabilities, and the one metrics.json schema of every task.

`fit_metrics` builds the record `xmodal fit` writes and the benchmarks read: the same
keys for series, sequences and tables (SCHEMA), the probe of the frozen source's
features beside the reprogrammed model.
"""

from __future__ import annotations

import resource
import sys

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    matthews_corrcoef,
    roc_auc_score,
)

SCHEMA = ("task", "dataset", "source", "preset", "settings", "seed", "n_train", "n_val", "n_test", "val_accuracy",
          "test_accuracy", "test_balanced_accuracy", "test_roc_auc", "test_mcc", "probe_val_accuracy",
          "probe_test_accuracy", "reprogramming_kept", "fit_seconds", "peak_rss_mb", "xmodal_version")


def classification_scores(y_true, probabilities: np.ndarray, classes) -> dict:
    """{"accuracy", "balanced_accuracy", "roc_auc", "mcc"}; ROC-AUC is one-vs-rest (macro over
    the classes present in y_true) for more than two classes and None when the labels hold a
    single class (it is undefined)."""
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
    truth, guess = y_true.astype(str), predicted.astype(str)
    return {"accuracy": float(np.mean(predicted == y_true)), "balanced_accuracy": float(balanced_accuracy_score(truth, guess)),
            "roc_auc": roc_auc, "mcc": float(matthews_corrcoef(truth, guess))}


def minority_pr_auc(y_true, probabilities: np.ndarray, classes) -> dict:
    """For two classes: average precision of the rarer class in y_true (fraud, bad credit),
    which unlike ROC-AUC depends on which class is positive. {} otherwise."""
    y_true, classes = np.asarray(y_true), list(classes)
    if len(classes) != 2:
        return {}
    counts = [int(np.sum(y_true == c)) for c in classes]
    column = 0 if counts[0] < counts[1] else 1
    return {"positive_class": classes[column],
            "test_pr_auc": float(average_precision_score(y_true == classes[column], probabilities[:, column]))}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def fit_metrics(estimator, dataset: str, n_train: int, y_test, probabilities: np.ndarray,
                probe_probabilities: np.ndarray | None, fit_seconds: float) -> dict:
    """The SCHEMA record of a fitted estimator scored on a test split."""
    from xmodal import __version__

    result = estimator.fit_result_
    scores = classification_scores(y_test, probabilities, estimator.classes_)
    probe_test = (None if probe_probabilities is None
                  else classification_scores(y_test, probe_probabilities, estimator.classes_)["accuracy"])
    probe_val = result.probe_val_accuracy
    if probe_val is None and result.history and result.history[0]["epoch"] == 0:
        probe_val = result.history[0].get("val_accuracy")  # the start state, when it is not a probe head
    record = {
        "task": estimator.task, "dataset": dataset, "source": estimator.settings_["source"],
        "preset": estimator.preset, "settings": estimator.settings_, "seed": estimator.seed_,
        "n_train": n_train, "n_val": result.n_val, "n_test": len(y_test), "val_accuracy": result.val_accuracy,
        "test_accuracy": scores["accuracy"], "test_balanced_accuracy": scores["balanced_accuracy"],
        "test_roc_auc": scores["roc_auc"], "test_mcc": scores["mcc"], "probe_val_accuracy": probe_val,
        "probe_test_accuracy": probe_test, "reprogramming_kept": result.reprogramming_kept,
        "fit_seconds": round(fit_seconds, 2), "peak_rss_mb": peak_rss_mb(), "xmodal_version": __version__,
    }
    return record

"""xmodal.metrics: the scores every benchmark, metrics.json and `xmodal evaluate` report, and
the one metrics.json schema of every task."""

from types import SimpleNamespace

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    matthews_corrcoef,
    roc_auc_score,
)

from xmodal import __version__
from xmodal.metrics import SCHEMA, classification_scores, fit_metrics, minority_pr_auc
from xmodal.training.config import FitResult


def _probabilities(n: int, k: int, seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).random((n, k))
    return raw / raw.sum(axis=1, keepdims=True)


def test_multiclass_auc_is_sklearns_one_vs_rest_when_every_class_is_present():
    y = np.array(["a", "b", "c"] * 10)
    p = _probabilities(30, 3)
    scores = classification_scores(y, p, ["a", "b", "c"])
    assert np.isclose(scores["roc_auc"], roc_auc_score(y, p, multi_class="ovr", labels=["a", "b", "c"]))
    assert scores["accuracy"] == np.mean(np.array(["a", "b", "c"])[p.argmax(axis=1)] == y)


def test_a_split_missing_a_class_still_scores():
    """sklearn's one-vs-rest raises when a class has no record; a small test split can lack one."""
    y = np.array(["a", "b"] * 10)
    p = _probabilities(20, 3, seed=1)
    scores = classification_scores(y, p, ["a", "b", "c"])
    expected = np.mean([roc_auc_score(y == c, p[:, i]) for i, c in enumerate(["a", "b"])])
    assert np.isclose(scores["roc_auc"], expected)
    assert classification_scores(np.array(["a"] * 5), _probabilities(5, 3), ["a", "b", "c"])["roc_auc"] is None


def test_two_class_scores_are_sklearns():
    y = np.array(["bad", "good", "good", "bad", "good", "good"])
    p = _probabilities(6, 2, seed=2)
    scores = classification_scores(y, p, ["bad", "good"])
    predicted = np.array(["bad", "good"])[p.argmax(axis=1)]
    assert np.isclose(scores["roc_auc"], roc_auc_score(y == "good", p[:, 1]))
    assert np.isclose(scores["balanced_accuracy"], balanced_accuracy_score(y, predicted))
    assert np.isclose(scores["mcc"], matthews_corrcoef(y, predicted))


def test_minority_pr_auc_scores_the_rarer_class():
    y = np.array(["bad", "good", "good", "good", "bad", "good"])
    p = _probabilities(6, 2, seed=3)
    scores = minority_pr_auc(y, p, ["bad", "good"])
    assert scores["positive_class"] == "bad"
    assert np.isclose(scores["test_pr_auc"], average_precision_score(y == "bad", p[:, 0]))
    assert minority_pr_auc(np.array(["a", "b", "c"]), _probabilities(3, 3), ["a", "b", "c"]) == {}


def test_fit_metrics_follow_the_schema():
    """The record of a fitted estimator: SCHEMA's keys in order, the probe beside the model."""
    history = [{"epoch": 0, "val_loss": 0.7, "val_accuracy": 0.5}, {"epoch": 1, "train_loss": 0.6, "val_loss": 0.5,
                                                                    "val_accuracy": 0.75}]
    result = FitResult(best_epoch=1, epochs_run=1, val_accuracy=0.75, val_loss=0.5, selection="validation", n_fit=16,
                       n_val=4, seconds=1.0, history=history)
    estimator = SimpleNamespace(task="series", fit_result_=result, classes_=np.array([1, 2]), preset="v2s",
                                settings_={"source": "bc-resnet-gsc35", "epochs": 1}, seed_=7)
    y = np.array([1, 2, 2, 1])
    p, probe = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]]), np.full((4, 2), 0.5) + [0.01, -0.01]
    record = fit_metrics(estimator, "GunPoint", 20, y, p, probe, fit_seconds=1.234)
    assert tuple(record) == SCHEMA
    assert record["task"] == "series" and record["source"] == "bc-resnet-gsc35" and record["seed"] == 7
    assert (record["n_train"], record["n_val"], record["n_test"]) == (20, 4, 4)
    assert record["test_accuracy"] == 1.0 and record["probe_test_accuracy"] == 0.5
    assert record["probe_val_accuracy"] == 0.5  # the start state's validation accuracy (epoch 0)
    assert record["reprogramming_kept"] is True and record["fit_seconds"] == 1.23
    assert record["xmodal_version"] == __version__ and record["peak_rss_mb"] > 0
    no_probe = fit_metrics(estimator, "GunPoint", 20, y, p, None, fit_seconds=1.0)
    assert no_probe["probe_test_accuracy"] is None

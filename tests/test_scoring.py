"""classification_scores: the metrics every benchmark, metrics.json and `xmodal evaluate` report."""

import numpy as np
from sklearn.metrics import roc_auc_score

from xmodal.metrics import classification_scores


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

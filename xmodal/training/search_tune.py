"""The search of xmodal.training.search on Ray Tune: candidates spread over a Ray cluster.

    V2SClassifier(preset="v2s", search="small", search_backend="ray").fit(X_train, y_train)

The same candidates, splits of the training data and scores as the local GridSearchCV
(scikit-learn's accuracy and neg_log_loss scorers, mean over the splits), one Tune trial
per candidate (`tune.grid_search`), one CPU each. The winner is chosen and refitted by
xmodal.training.search, as locally. Ray runs embedded, or on the cluster that
RAY_ADDRESS names (`ray.init`'s own rule). Test data never reaches this module.
"""

from __future__ import annotations

import tempfile

import numpy as np
from sklearn.base import clone
from sklearn.metrics import get_scorer


def _trial(config: dict, base, X, y, candidates: list[dict], splits: list) -> dict:
    """One candidate on every split: mean held-out accuracy and log-loss (Tune's trial function)."""
    params = candidates[config["candidate"]]
    accuracy, log_loss = [], []
    for train, test in splits:
        model = clone(base).set_params(**params).fit(X[train], y[train])
        accuracy.append(get_scorer("accuracy")(model, X[test], y[test]))
        log_loss.append(-get_scorer("neg_log_loss")(model, X[test], y[test]))
    return {"accuracy": float(np.mean(accuracy)), "log_loss": float(np.mean(log_loss))}


def tune_scores(base, X: np.ndarray, y: np.ndarray, candidates: list[dict], cv) -> list[dict]:
    """Per candidate, in grid order: {"accuracy", "log_loss"} on the held-out parts of `cv`."""
    import os

    from xmodal.ray_session import import_ray, ray_session

    import_ray()  # Ray missing: one line naming the extra, before ray.tune's own ImportError
    # Tune's default console output draws a table of trials; the search reports its own scores.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune

    splits = list(cv.split(X, y))
    trainable = tune.with_resources(tune.with_parameters(_trial, base=base, X=X, y=y, candidates=candidates,
                                                         splits=splits), {"cpu": 1})
    address = os.environ.get("RAY_ADDRESS")  # a cluster, as ray.init would read it; else a local Ray
    with ray_session(address, None), tempfile.TemporaryDirectory(prefix="xmodal-tune-") as storage:
        tuner = tune.Tuner(trainable, param_space={"candidate": tune.grid_search(list(range(len(candidates))))},
                           run_config=tune.RunConfig(storage_path=storage, name="search", verbose=0))
        results = tuner.fit()
        errors = [result.error for result in results if result.error is not None]
        if errors:
            raise errors[0]
        scores = {result.config["candidate"]: result.metrics for result in results}
    return [{"accuracy": float(scores[i]["accuracy"]), "log_loss": float(scores[i]["log_loss"])}
            for i in range(len(candidates))]

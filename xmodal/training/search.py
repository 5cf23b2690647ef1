"""Choosing settings on the training split only, with scikit-learn's GridSearchCV.

    V2SClassifier(preset="v2s", search="small", random_state=0).fit(X_train, y_train)

Every candidate of a small documented grid is fitted on stratified parts of the training
data and scored on the rest (one held-out quarter, or stratified k-fold); the winner by
held-out accuracy, then log-loss (small held-out parts tie often), then grid order, is
refitted on the whole training split. Candidates train for exactly their `epochs` with
no validation part of their own (val_fraction 0), so the held-out part is scored once.
Test data never reaches this module: it is handed the training arrays only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from xmodal.errors import DataError
from xmodal.presets import PRESETS
from xmodal.settings import SEARCH_BACKENDS

# One base setting (the v2s preset's map, placement, mask and learning rate, 20 epochs) and
# one change at a time, kept to 8 short fits: about 200 epochs on 3/4 of the training data
# (minutes on 2 CPU cores).
_BASE = {**{k: PRESETS["series", "v2s"].settings[k] for k in ("mapping", "copies", "upsample_factor", "masked", "lr")},
         "epochs": 20}
GRIDS = {
    "small": [
        _BASE,
        {**_BASE, "mapping": "linear"},
        {**_BASE, "mapping": "blm"},
        {**_BASE, "copies": 3},
        {**_BASE, "target_duration": 0.5},
        {**_BASE, "upsample_factor": 2, "masked": False},
        {**_BASE, "lr": 0.01, "epochs": 40},
        {**_BASE, "mapping": "linear", "lr": 0.01, "epochs": 40},
    ],
}
GRIDS["tiny"] = GRIDS["small"][:3]  # the three mapping kinds only: for tests and quick runs
HOLDOUT = 0.25


@dataclass
class SearchResult:
    grid: list[dict]
    scores: list[dict]  # per candidate: mean held-out accuracy and log-loss
    best_index: int
    method: str  # "holdout 0.25" or "5-fold"
    seconds: float

    @property
    def best(self) -> dict:
        return self.grid[self.best_index]

    def to_dict(self) -> dict:
        return {**asdict(self), "best": self.best}


def resolve_grid(search, searchable: tuple[str, ...]) -> list[dict]:
    """A grid name or a list of candidate dicts, each setting only `searchable` names."""
    if isinstance(search, str):
        if search not in GRIDS:
            raise DataError(f"unknown search grid {search!r}; choose one of {', '.join(GRIDS)} or give a list of dicts")
        grid = [dict(c) for c in GRIDS[search]]
    else:
        grid = [dict(c) for c in search]
    if not grid:
        raise DataError("the search grid is empty; give at least one candidate")
    for candidate in grid:
        unknown = sorted(set(candidate) - set(searchable))
        if unknown:
            raise DataError(f"search candidate {candidate} sets {unknown}, which are not settings of this task")
    return grid


def _splitter(y: np.ndarray, folds: int, seed: int):
    smallest = int(np.unique(y, return_counts=True)[1].min())
    if folds > 1:
        if smallest < folds:
            raise DataError(f"{folds}-fold search needs at least {folds} training samples per class, the smallest "
                            f"class has {smallest}; use fewer folds or the held-out quarter (folds 1)")
        return StratifiedKFold(folds, shuffle=True, random_state=seed), f"{folds}-fold"
    if smallest < 2:
        raise DataError("the search needs at least 2 training samples per class for a stratified held-out part; "
                        "fit with fixed settings instead")
    n_test = max(int(round(HOLDOUT * len(y))), len(np.unique(y)))
    return StratifiedShuffleSplit(1, test_size=n_test, random_state=seed), f"holdout {HOLDOUT}"


def _winner(scores: list[dict]) -> int:
    """Held-out accuracy, then log-loss, then grid order."""
    return min(range(len(scores)), key=lambda i: (-scores[i]["accuracy"], scores[i]["log_loss"], i))


def _cv_scores(results: dict) -> list[dict]:
    return [{"accuracy": float(accuracy), "log_loss": float(-negative)}
            for accuracy, negative in zip(results["mean_test_accuracy"], results["mean_test_neg_log_loss"])]


def search(estimator, X: np.ndarray, y: np.ndarray, grid: list[dict], seed: int, folds: int = 1,
           backend: str = "local"):
    """(the winner refitted on all of X, SearchResult). `estimator` is cloned, never fitted.
    backend "local": scikit-learn's GridSearchCV in this process; "ray": one Ray Tune trial
    per candidate (xmodal.training.search_tune), the same scores."""
    if backend not in SEARCH_BACKENDS:
        raise DataError(f"unknown search backend {backend!r}; choose {' or '.join(SEARCH_BACKENDS)}")
    start = time.perf_counter()
    cv, method = _splitter(np.asarray(y), folds, seed)
    base = clone(estimator).set_params(search=None, val_fraction=0.0, random_state=seed, verbose=False)
    candidates = [{**c, "patience": c.get("epochs", 1)} for c in grid]
    if backend == "ray":
        from xmodal.training.search_tune import tune_scores

        scores = tune_scores(base, X, y, candidates, cv)
        best = _winner(scores)
        winner = clone(base).set_params(**candidates[best]).fit(X, y)
    else:
        searcher = GridSearchCV(base, [{k: [v] for k, v in c.items()} for c in candidates],
                                scoring=("accuracy", "neg_log_loss"), refit=lambda r: _winner(_cv_scores(r)), cv=cv,
                                error_score="raise").fit(X, y)
        scores, best, winner = _cv_scores(searcher.cv_results_), int(searcher.best_index_), searcher.best_estimator_
    return winner, SearchResult(grid, scores, best, method if backend == "local" else f"{method} on Ray Tune",
                                time.perf_counter() - start)

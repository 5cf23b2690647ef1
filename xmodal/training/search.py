"""Hyper-parameter selection for V2SClassifier on the training split only.

    V2SClassifier(search="small", random_state=0).fit(X_train, y_train)

Every candidate of a small documented grid is fitted on a stratified part of
the training data and scored on the rest of it (one held-out part, or
stratified k-fold with `folds > 1`); the winner is then refitted on the whole
training split by the estimator. The function below is handed the training
arrays and nothing else, so test data cannot reach the selection.

Candidates are fitted with `val_fraction=0`, so each trains for exactly its
`epochs` (no early stopping inside a candidate) and the held-out part is
scored once, at the end. Ranking: held-out accuracy, then held-out log-loss
(small held-out parts tie often), then grid order.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from xmodal.errors import DataError
from xmodal.training.loop import validation_split

# The grid: one base setting (V2S's frequency mapping, one copy, no stretch, mask on,
# lr 0.05, 20 epochs) and one change at a time (mapping kind, copies m, upsampling,
# mask, learning rate with more epochs), kept to 8 short fits so that a search costs
# about 200 epochs on 3/4 of the training data (minutes on 2 CPU cores).
_BASE = {"mapping": "frequency", "copies": 1, "upsample_factor": 1, "target_duration": None,
         "masked": True, "lr": 0.05, "epochs": 20}
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
NO_SPLIT = ("skipped: a class has fewer than 2 training series, so no stratified held-out part exists; "
            "the grid's first candidate is used")
SEARCHABLE = ("mapping", "copies", "upsample_factor", "target_duration", "masked", "lr", "epochs",
              "labels_per_class", "offset", "delta_dropout", "interpolation", "remap_every")


@dataclass
class SearchResult:
    grid: list[dict]
    scores: list[dict]  # per candidate: mean held-out accuracy and log-loss, per-split accuracies (empty if skipped)
    best_index: int
    method: str  # "holdout 0.25" or "5-fold"
    seconds: float

    @property
    def best(self) -> dict:
        return self.grid[self.best_index]

    def to_dict(self) -> dict:
        return {**asdict(self), "best": self.best}


def resolve_grid(search) -> list[dict]:
    """A grid name ("small", "tiny") or a list of candidate dicts, checked."""
    if isinstance(search, str):
        if search not in GRIDS:
            raise DataError(f"unknown search grid {search!r}; choose one of {', '.join(GRIDS)} or give a list of dicts")
        return [dict(c) for c in GRIDS[search]]
    grid = [dict(c) for c in search]
    if not grid:
        raise DataError("the search grid is empty; give at least one candidate")
    for candidate in grid:
        unknown = sorted(set(candidate) - set(SEARCHABLE))
        if unknown:
            raise DataError(f"search candidate {candidate} sets {unknown}, which are not searchable; "
                            f"use only {', '.join(SEARCHABLE)}")
    return grid


def selection_splits(y: np.ndarray, folds: int, holdout: float, seed: int) -> tuple[list, str]:
    """Stratified (fit, held-out) index pairs over the training labels."""
    targets = np.searchsorted(np.unique(y), y)
    if folds > 1:
        smallest = np.bincount(targets).min()
        if smallest < folds:
            raise DataError(f"{folds}-fold selection needs at least {folds} training series per class, the smallest "
                            f"class has {smallest}; use fewer folds or the held-out part (folds=1)")
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), targets)), f"{folds}-fold"
    fit_idx, held_idx = validation_split(targets, holdout, seed)
    if len(held_idx) == 0:
        return [], NO_SPLIT
    return [(fit_idx, held_idx)], f"holdout {holdout}"


def _log_loss(probabilities: np.ndarray, truth: np.ndarray, classes: np.ndarray) -> float:
    picked = probabilities[np.arange(len(truth)), np.searchsorted(classes, truth)]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, None))))


def select_hyperparameters(estimator, X_train: np.ndarray, y_train: np.ndarray, grid: list[dict], seed: int,
                           folds: int = 1, holdout: float = 0.25, progress: bool = False) -> SearchResult:
    """Score each candidate on held-out parts of (X_train, y_train); the estimator is cloned, never fitted."""
    start = time.perf_counter()
    splits, method = selection_splits(y_train, folds, holdout, seed)
    classes = np.unique(y_train)
    scores: list[dict] = []
    if not splits:  # nothing to score on: the first candidate, and the record says why
        return SearchResult(grid, scores, 0, method, time.perf_counter() - start)
    bar = tqdm(total=len(grid) * len(splits), desc="search", unit="fit", disable=not progress, leave=False)
    for candidate in grid:
        accuracies, losses = [], []
        for fit_idx, held_idx in splits:
            model = clone(estimator).set_params(**{**candidate, "search": None, "val_fraction": 0.0,
                                                   "patience": candidate.get("epochs", estimator.epochs),
                                                   "random_state": seed, "verbose": False})
            model.fit(X_train[fit_idx], y_train[fit_idx])
            probabilities = model.predict_proba(X_train[held_idx])
            accuracies.append(float(np.mean(classes[probabilities.argmax(axis=1)] == y_train[held_idx])))
            losses.append(_log_loss(probabilities, y_train[held_idx], classes))
            bar.update()
        scores.append({"accuracy": float(np.mean(accuracies)), "log_loss": float(np.mean(losses)),
                       "split_accuracies": accuracies})
    bar.close()
    best_index = min(range(len(grid)), key=lambda i: (-scores[i]["accuracy"], scores[i]["log_loss"], i))
    return SearchResult(grid, scores, best_index, method, time.perf_counter() - start)

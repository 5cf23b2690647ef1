"""Carving the validation part out of the training data: the one place it happens."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def selection_split(targets: np.ndarray, fraction: float, epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (fit, val) split a fit selects its epoch on: none without training epochs (nothing to
    select), else `validation_split`."""
    return validation_split(targets, fraction if epochs > 0 else 0.0, seed)


def validation_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (fit, val) indices, sorted. At least one validation sample per class;
    when a class has fewer than 2 samples no stratified split exists and every sample is
    used for fitting (val empty)."""
    targets = np.asarray(targets)
    indices = np.arange(len(targets))
    counts = np.unique(targets, return_counts=True)[1]
    if fraction <= 0 or counts.min() < 2:
        return indices, indices[:0]
    n_val = max(int(round(fraction * len(targets))), len(counts))
    if len(targets) - n_val < len(counts):
        return indices, indices[:0]
    fit_idx, val_idx = train_test_split(indices, test_size=n_val, stratify=targets, random_state=seed)
    return np.sort(fit_idx), np.sort(val_idx)

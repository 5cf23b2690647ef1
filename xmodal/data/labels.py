"""Checks that a classifier's labels are classes, run before any training.

    check_class_labels(y, "the train split (Tecator_TRAIN.ts)")    # missing / continuous -> DataError
    check_known_classes(y_test, classes, "the test split (...)")   # classes training never saw -> DataError
    continuous_target(y)                                           # why y is a regression target, or None

A target is continuous (a measurement to regress, not classes) when its labels are numbers
and some are fractional (scikit-learn's "continuous" type, which its classifiers refuse), or
when more than CONTINUOUS_SHARE of them are distinct and they take more than
CONTINUOUS_LEAST_VALUES values: classes repeat, measurements rarely do. Tecator's fat
content (172 training series, 124 values) and ESOL's solubility are refused so; the
classification sets of the UCR archive (at most 60 classes, each seen several times) pass.
"""

from __future__ import annotations

import numpy as np

from xmodal.errors import DataError

CONTINUOUS_SHARE = 0.5  # more distinct values than this share of the labels: a measurement, not classes
CONTINUOUS_LEAST_VALUES = 20  # ... and more distinct values than this (a few samples of a few classes are classes)
SHOWN = 5  # values or records an error line names, at most


def _numbers(labels) -> np.ndarray | None:
    """The labels as floats, or None when some label is not a number (then they are names)."""
    values = np.asarray(labels, dtype=object).ravel()
    if any(isinstance(value, (bool, np.bool_)) for value in values):
        return None
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        return None


def _missing(labels) -> np.ndarray:
    """Which labels are missing: None, NaN or an empty string."""
    values = np.asarray(labels, dtype=object).ravel()
    return np.array([value is None or (isinstance(value, str) and not value.strip())
                     or (isinstance(value, (float, np.floating)) and np.isnan(value)) for value in values], dtype=bool)


def continuous_target(labels) -> str | None:
    """Why `labels` are a continuous (regression) target, in words; None when they are classes."""
    numbers = _numbers(labels)
    if numbers is None:
        return None
    numbers = numbers[~np.isnan(numbers)]  # missing labels are refused on their own
    if not numbers.size:
        return None
    distinct = np.unique(numbers)
    fractional = not np.all(distinct == np.round(distinct))
    many = len(distinct) > max(CONTINUOUS_LEAST_VALUES, CONTINUOUS_SHARE * len(numbers))
    if not (fractional or many):
        return None
    examples = ", ".join(f"{value:g}" for value in numbers[:SHOWN])
    return f"{len(distinct)} distinct numbers among {len(numbers)} labels (first: {examples})"


def check_class_labels(labels, where: str) -> None:
    """Refuse missing labels and a continuous target, naming `where` (the split and its file)."""
    missing = _missing(labels)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"{where}: {int(missing.sum())} of {len(missing)} labels are missing (first: sample "
                        f"{first + 1}); give every sample a class, or drop those samples")
    reason = continuous_target(labels)
    if reason is not None:
        raise DataError(f"{where}: the labels are a continuous (regression) target, {reason}, and xmodal fits "
                        "classifiers; give class labels (bin the target into classes), or choose a classification "
                        "dataset (`xmodal datasets` marks them)")


def check_known_classes(labels, classes, where: str) -> None:
    """Refuse labels that the training split never holds: no classifier can predict them."""
    known = set(np.asarray(classes, dtype=object).tolist())
    values = np.asarray(labels, dtype=object).ravel().tolist()
    unseen = sorted({value for value in values if value not in known}, key=str)
    if unseen:
        count = sum(value not in known for value in values)
        raise DataError(f"{where}: {count} of {len(values)} samples have labels {unseen[:SHOWN]} that no training "
                        f"sample has (the training classes are {sorted(known, key=str)[:SHOWN * 2]}); a classifier "
                        "cannot predict them: give this split only the training classes")

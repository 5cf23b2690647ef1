"""Summary statistics of a sweep's results table (pure functions, tested in tests/test_sweep_report.py).

A table is {dataset: {method: accuracy}}, the accuracy being the mean over
seeds. Methods missing on a dataset are left out of that dataset's ranking;
`complete_datasets` gives the datasets every method finished, on which the
headline numbers are computed so that no method is judged on easier sets.
"""

from __future__ import annotations

import numpy as np

# Accuracies closer than this are ties (UCR test sets have at most a few thousand series).
TIE_TOLERANCE = 1e-9


def complete_datasets(table: dict[str, dict[str, float]], methods: list[str]) -> list[str]:
    return [d for d in table if all(m in table[d] for m in methods)]


def ranks(accuracies: dict[str, float]) -> dict[str, float]:
    """Rank 1 = most accurate; tied methods share the mean of their ranks."""
    ordered = sorted(accuracies, key=lambda m: -accuracies[m])
    result, i = {}, 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and abs(accuracies[ordered[j + 1]] - accuracies[ordered[i]]) <= TIE_TOLERANCE:
            j += 1
        for method in ordered[i : j + 1]:
            result[method] = (i + j) / 2 + 1
        i = j + 1
    return result


def mean_accuracy(table: dict, methods: list[str], datasets: list[str]) -> dict[str, float]:
    return {m: float(np.mean([table[d][m] for d in datasets])) for m in methods}


def mean_rank(table: dict, methods: list[str], datasets: list[str]) -> dict[str, float]:
    per_dataset = [ranks({m: table[d][m] for m in methods}) for d in datasets]
    return {m: float(np.mean([r[m] for r in per_dataset])) for m in methods}


def wins_ties_losses(table: dict, method: str, reference: str, datasets: list[str]) -> tuple[int, int, int]:
    """How often `method` is more accurate than, as accurate as, less accurate than `reference`."""
    wins = ties = losses = 0
    for d in datasets:
        difference = table[d][method] - table[d][reference]
        if abs(difference) <= TIE_TOLERANCE:
            ties += 1
        elif difference > 0:
            wins += 1
        else:
            losses += 1
    return wins, ties, losses

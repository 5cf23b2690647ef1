"""The kernel probe: a support-vector read-out of the frozen source's features through an RBF kernel,
its decisions turned into probabilities by a fitted sigmoid (Platt scaling).

Beside the linear probe (probe.py) for the sequence task: on MiniLM's pooled reading of peptides it had the
lower validation log-loss on AMP and on every ToxinPred fold, and on ToxinPred's 3 886 x 8 064 numbers it took
a sixth of the linear probe's time (docs/experiments.md, 0.32). The features are standardised once, on all
fitting data, as the linear probe's are; the kernel is one matrix product, handed to libsvm precomputed.
Two classes: one decision; more: one decision per class against the rest. C is chosen among `cs` by k-fold
log-loss: the sigmoid fitted on the out-of-fold decisions, scored on them (slightly optimistic, alike for every C).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from xmodal.training.probe import cv_folds, standardisation

# The SVM's C tried (hinge loss: larger than the linear probe's), around the C = 3 that 5-fold CV chose on
# ToxinPred's five folds, BBBP and BACE, with C = 10 on AMP and 1 on ClinTox (docs/experiments.md, 0.32).
KERNEL_C = (0.3, 1.0, 3.0, 10.0, 30.0)
# The sigmoid on the decisions is nearly unpenalised (Platt's): a handful of numbers fitted on thousands of rows.
CALIBRATION_C = 1e4


@dataclass
class KernelProbe:
    mean: np.ndarray  # (d,) the features' mean and spread over the fitting rows
    scale: np.ndarray
    support: np.ndarray  # (m, d) the standardised fitting rows some decision weighs (its support vectors)
    dual: np.ndarray  # (m, q) each support row's weight in each decision (q = 1 for two classes, else one per class)
    bias: np.ndarray  # (q,)
    gamma: float  # the kernel's width: exp(-gamma |z - z'|^2)
    calibration_weight: np.ndarray  # (k, q) class logits = decisions @ calibration_weight.T + calibration_bias
    calibration_bias: np.ndarray  # (k,)
    c: float
    cv_log_loss: float | None = None  # k-fold log-loss at the chosen C (None: C was not chosen)


def rbf_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(-gamma |a_i - b_j|^2), (len(a), len(b)), in float64 for libsvm; the distances by one float32
    matrix product (thousands of rows of thousands of numbers: a second, where a pairwise loop takes minutes)."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    squared = (a32 * a32).sum(axis=1)[:, None] + (b32 * b32).sum(axis=1)[None, :] - 2 * a32 @ b32.T
    return np.exp(-gamma * np.maximum(squared, 0.0)).astype(np.float64)


def fit_kernel_probe(features: torch.Tensor, targets: torch.Tensor, seed: int, c: float | None = None,
                     cs: tuple[float, ...] = KERNEL_C) -> KernelProbe:
    """An RBF-kernel SVM on standardised features (gamma 1 / d), C given or chosen among `cs` by k-fold
    log-loss (k = min(5, the smallest class's count); C = 1 and the sigmoid fitted in-sample when a class
    has one example), calibrated on the out-of-fold decisions at that C."""
    x, y = features.double().cpu().numpy(), targets.cpu().numpy()
    mean, scale = standardisation(x)
    z = (x - mean) / scale
    gamma = 1.0 / z.shape[1]
    kernel = rbf_kernel(z, z, gamma)
    k = int(y.max()) + 1
    folds = cv_folds(y)
    cv_log_loss, chosen = None, c is None
    if folds >= 2:
        split = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(z, y))
        scored = {}
        for candidate in ((c,) if c is not None else cs):
            decisions = np.zeros((len(y), 1 if k == 2 else k))
            for fit_rows, held_out in split:
                machines = _fit_machines(kernel[np.ix_(fit_rows, fit_rows)], y[fit_rows], k, candidate)
                decisions[held_out] = _decisions(kernel[np.ix_(held_out, fit_rows)], machines)
            calibration = _calibrate(decisions, y)
            scored[candidate] = (log_loss(y, calibration.predict_proba(decisions), labels=np.arange(k)), calibration)
        c = min(scored, key=lambda candidate: scored[candidate][0])  # the first of equal scores: the smaller C
        calibration = scored[c][1]
        cv_log_loss = scored[c][0] if chosen else None
    else:
        c = 1.0 if c is None else c
    machines = _fit_machines(kernel, y, k, c)
    if folds < 2:
        calibration = _calibrate(_decisions(kernel, machines), y)
    support = np.unique(np.concatenate([machine.support_ for machine in machines]))
    dual = np.zeros((len(support), len(machines)))
    for j, machine in enumerate(machines):
        dual[np.searchsorted(support, machine.support_), j] = machine.dual_coef_[0]
    weight, bias = calibration.coef_, calibration.intercept_
    if k == 2:  # scikit-learn's one row of a two-class regression: the first class's logit is 0
        weight, bias = np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    return KernelProbe(mean, scale, z[support], dual, np.array([m.intercept_[0] for m in machines]), gamma,
                       weight, bias, float(c), cv_log_loss)


def _fit_machines(kernel: np.ndarray, y: np.ndarray, k: int, c: float) -> list[SVC]:
    """One SVM for two classes (the second against the first), else one per class against the rest."""
    return [SVC(C=c, kernel="precomputed").fit(kernel, y == j) for j in ([1] if k == 2 else range(k))]


def _decisions(kernel: np.ndarray, machines: list[SVC]) -> np.ndarray:
    return np.stack([machine.decision_function(kernel) for machine in machines], axis=1)


def _calibrate(decisions: np.ndarray, y: np.ndarray) -> LogisticRegression:
    with warnings.catch_warnings():  # scikit-learn 1.9 announces 1.10's parameter changes
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegression(C=CALIBRATION_C, max_iter=1000).fit(decisions, y)

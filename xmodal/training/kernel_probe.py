"""The kernel probe: a support-vector read-out of the frozen source's features through an RBF kernel,
its decisions turned into probabilities by a fitted sigmoid (Platt scaling).

Beside the linear probe (probe.py) for the sequence task: on MiniLM's pooled reading of peptides it had the
lower validation log-loss on AMP and on every ToxinPred fold, and on ToxinPred's 3 886 x 8 064 numbers its C
search and refit take about 7 s, under a tenth of the linear probe's time (docs/experiments.md, 0.32, 0.33).
The features are standardised once, on all fitting data, as the linear probe's are; the kernel is one matrix
product, handed to libsvm precomputed.
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

from xmodal.errors import DataError
from xmodal.maps.rbf import rbf_kernel
from xmodal.training.probe import cv_folds, standardisation

# The SVM's C tried (hinge loss: larger than the linear probe's), around the C = 3 that 5-fold CV chose on
# ToxinPred's five folds, BBBP and BACE, with C = 10 on AMP and 1 on ClinTox (docs/experiments.md, 0.32).
KERNEL_C = (0.3, 1.0, 3.0, 10.0, 30.0)
# The kernel is n x n in float64 for libsvm, and a fold's blocks sit beside it while C is chosen: about 15 bytes
# per pair of records at the peak, 6 GB for this many records (beside the features themselves: 2 GB more for
# MiniLM's 8 064 numbers, and about three times that for a trained view's two readings side by side and their
# copies). Above it, one clear refusal before any reading.
KERNEL_MAX_ROWS = 20_000
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


def check_kernel_rows(rows: int) -> None:
    """Refuse a kernel of more than KERNEL_MAX_ROWS records, naming the way out."""
    if rows > KERNEL_MAX_ROWS:
        raise DataError(f"a kernel head on {rows} records needs a {rows} x {rows} kernel (about "
                        f"{rows * rows * 15 / 1e9:.0f} GB); it takes at most {KERNEL_MAX_ROWS}: read out with "
                        "head='linear', or fit on a sample of the records")


def fit_kernel_probe(features: torch.Tensor, targets: torch.Tensor, seed: int, c: float | None = None,
                     cs: tuple[float, ...] = KERNEL_C) -> KernelProbe:
    """An RBF-kernel SVM on standardised features (gamma 1 / d), C given or chosen among `cs` by k-fold
    log-loss (k = min(5, the smallest class's count); C = 1 and the sigmoid fitted in-sample when a class
    has one example), calibrated on the out-of-fold decisions at that C. The features and the kernel are in
    float32 as the head's are, and in torch: numpy asks the operating system for huge pages for large arrays,
    and where it compacts memory to find them that doubled this probe's time (docs/experiments.md, 0.33)."""
    check_kernel_rows(len(features))
    x, y = features.detach().float().cpu(), targets.cpu().numpy()
    mean, scale = standardisation(x.numpy())
    z = (x - torch.from_numpy(mean).float()) / torch.from_numpy(scale).float()
    gamma = 1.0 / z.shape[1]
    kernel = rbf_kernel(z, z, gamma).double()  # float64 for libsvm
    k = int(y.max()) + 1
    folds = cv_folds(y)
    cv_log_loss, chosen = None, c is None
    if folds >= 2:
        candidates = (c,) if c is not None else cs
        decisions = {candidate: np.zeros((len(y), 1 if k == 2 else k)) for candidate in candidates}
        for fit_rows, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
            fit_block, held_block = _block(kernel, fit_rows, fit_rows), _block(kernel, held_out, fit_rows)
            for candidate in candidates:  # each fold's blocks cut once, for every C
                decisions[candidate][held_out] = _decisions(held_block, _fit_machines(fit_block, y[fit_rows], k,
                                                                                      candidate))
        scored = {}
        for candidate, held_decisions in decisions.items():
            calibration = _calibrate(held_decisions, y)
            scored[candidate] = (log_loss(y, calibration.predict_proba(held_decisions), labels=np.arange(k)),
                                 calibration)
        c = min(scored, key=lambda candidate: scored[candidate][0])  # the first of equal scores: the smaller C
        calibration = scored[c][1]
        cv_log_loss = scored[c][0] if chosen else None
    else:
        c = 1.0 if c is None else c
    machines = _fit_machines(kernel.numpy(), y, k, c)
    if folds < 2:
        calibration = _calibrate(_decisions(kernel.numpy(), machines), y)
    support = np.unique(np.concatenate([machine.support_ for machine in machines]))
    dual = np.zeros((len(support), len(machines)))
    for j, machine in enumerate(machines):
        dual[np.searchsorted(support, machine.support_), j] = machine.dual_coef_[0]
    weight, bias = calibration.coef_, calibration.intercept_
    if k == 2:  # scikit-learn's one row of a two-class regression: the first class's logit is 0
        weight, bias = np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    return KernelProbe(mean, scale, z[support].numpy(), dual, np.array([m.intercept_[0] for m in machines]), gamma,
                       weight, bias, float(c), cv_log_loss)


def _block(kernel: torch.Tensor, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """kernel[rows][:, columns] in one copy, as libsvm takes it."""
    return kernel[torch.from_numpy(rows)[:, None], torch.from_numpy(columns)].numpy()


def _fit_machines(kernel: np.ndarray, y: np.ndarray, k: int, c: float) -> list[SVC]:
    """One SVM for two classes (the second against the first), else one per class against the rest."""
    return [SVC(C=c, kernel="precomputed").fit(kernel, y == j) for j in ([1] if k == 2 else range(k))]


def _decisions(kernel: np.ndarray, machines: list[SVC]) -> np.ndarray:
    return np.stack([machine.decision_function(kernel) for machine in machines], axis=1)


def _calibrate(decisions: np.ndarray, y: np.ndarray) -> LogisticRegression:
    with warnings.catch_warnings():  # scikit-learn 1.9 announces 1.10's parameter changes
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegression(C=CALIBRATION_C, max_iter=1000).fit(decisions, y)

"""The probe start: a logistic-regression read-out of the frozen source's features.

Linear probing before joint training (LP-FT, Kumar et al. 2022): the head starts from
the best linear read-out of the untrained bridge's features, so training theta has to
beat a fitted model, and when it cannot (validation says so) the probe is the model.
C is chosen by scikit-learn's LogisticRegressionCV on stratified folds of the fitting
data, scored by log-loss. The features are standardised once, on all fitting data,
before the folds: per-fold scaling (a Pipeline in GridSearchCV) measured no different
on the UCR sets and costs a refit per C.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, train_test_split

# Strengths tried, finer and lower where thousands of pooled features put the optimum (C =
# 0.01 won at the edge of a 0.01-10 grid on every R2DL set, 0.003 on several): the grid the
# series and sequence presets' figures were measured with. A grid down to 1e-5, tried once in
# 0.2, picks nearly uniform probes on tiny UCR sets; their validation log-loss is then beaten
# by any trained epoch on 4-series validation parts, and training is kept where it hurts
# (docs/experiments.md, "0.2: the probe grid").
PROBE_C = (0.003, 0.01, 0.03, 0.1, 1.0, 10.0)
PROBE_FOLDS = 5
# A feature that is (nearly) constant over the fitting data carries no signal; dividing
# by its tiny spread would turn float noise into huge standardised values.
SCALE_FLOOR = 1e-6
# Columns whose spread is taken at once: a spread works on a float64 copy of what it reads, and of thousands of
# rows of thousands of numbers that copy costs more than the sums (docs/experiments.md, 0.33).
SPREAD_COLUMNS = 1024
# A multi-view bridge's reading is far wider than a training set is long (the table bridge's
# per-feature images: 1000 log-probabilities per feature, 20 000 numbers for German credit's 20
# columns); the regression then ran to its iteration limit at every C, over 10 minutes per probe.
# Each view is read through its leading principal components instead. German credit, training-
# split 5-fold ROC-AUC, 2 / 4 / 8 / 16 components per view: 0.759 / 0.759 / 0.759 / 0.756.
VIEW_COMPONENTS = 4
# Centring leaves the standardised rows one null direction (they sum to zero), and repeated rows
# add more: Gram eigenvalues under this share of the largest are float noise, not span.
RANK_TOLERANCE = 1e-10
# Features per row above which the probe is fitted in its rows' span: the span costs about n^2 d
# to find, and pays where d is several times n. One thread: AMP, 8 064 features for 1 424 rows,
# 8.6 s -> 2.9 s; ToxinPred, 8 064 for 3 886, 32 s -> 41 s.
WIDE = 3


@dataclass
class Probe:
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    c: float | tuple[float, ...]  # one per block of a probe per block
    cv_log_loss: float | None = None  # mean held-out log-loss at the chosen C (None: C was not chosen on these rows)
    bounds: tuple[np.ndarray, np.ndarray] | None = None  # each feature's lowest and highest value where it was fitted


def fit_probe(features: torch.Tensor, targets: torch.Tensor, seed: int, c: float | tuple[float, ...] | None = None,
              cs: tuple[float, ...] = PROBE_C, views: int = 1,
              blocks: tuple[tuple[int, int], ...] | None = None, c_rows: int | None = None) -> Probe:
    """Logistic regression on standardised features; C given, or chosen among `cs` by k-fold
    log-loss (k = min(5, the smallest class's count); C = 1 when a class has one example).
    views > 1: the features are that many equal blocks, one per view of a multi-view bridge,
    each read through its leading principal components (VIEW_COMPONENTS), the probe folded
    back to the full width. blocks: the (start, end) column ranges probed one by one, their
    probes averaged (`_fit_per_block`: a fused source's parts, and a trained view beside its start);
    c is then one C per block. c_rows: C is chosen on at most this many rows, a stratified sample, and the
    probe fitted on all rows at that C (the search costs about folds x Cs fits, the fit at C one; for a start
    that only steers training, estimators.base). scikit-learn's C weighs the summed loss, so on all rows that C
    regularises less than on the sample; where no stratified sample can be drawn (a class of one row, or too
    few rows beside the sample for every class) C is chosen on all rows. The probe's bounds: each feature's
    range over these rows."""
    y = targets.cpu().numpy()  # scikit-learn: on the CPU, whatever the model's
    if c is None and c_rows is not None and _can_sample(y, c_rows):
        sample, _ = train_test_split(np.arange(len(y)), train_size=c_rows, stratify=y, random_state=seed)
        c = fit_probe(features[sample], targets[sample], seed, None, cs, views, blocks).c
    x = features.double().cpu().numpy()
    if blocks is not None:
        probe = _fit_per_block(x, y, seed, c, cs, blocks)
    else:
        probe = _fit_per_view(x, y, seed, c, cs, views) if views > 1 else _fit_standardised(x, y, seed, c, cs)
    return dataclasses.replace(probe, bounds=(x.min(axis=0), x.max(axis=0)))


def _can_sample(y: np.ndarray, rows: int) -> bool:
    """Whether a stratified sample of `rows` rows can be drawn from fewer than all of y: every class holds 2
    rows or more, and both the sample and what is left hold a row of each."""
    counts = np.unique(y, return_counts=True)[1]
    return counts.min() >= 2 and len(counts) <= rows <= len(y) - len(counts)


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and spread over the fitting rows (the spread floored at SCALE_FLOOR), summed in
    float64 whatever x's type; the spread SPREAD_COLUMNS at a time."""
    spread = np.concatenate([x[:, start : start + SPREAD_COLUMNS].std(axis=0, dtype=np.float64)
                             for start in range(0, x.shape[1], SPREAD_COLUMNS)])
    return x.mean(axis=0, dtype=np.float64), np.maximum(spread, SCALE_FLOOR)


def cv_folds(y: np.ndarray) -> int:
    """Folds C is chosen on: PROBE_FOLDS, fewer when the smallest class is smaller (below 2: none)."""
    return min(PROBE_FOLDS, int(np.unique(y, return_counts=True)[1].min()))


def row_space(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates (n, r), basis (d, r)) of the rows of z in an orthonormal basis of their span,
    from the n x n Gram matrix: z == coordinates @ basis.T up to float error."""
    values, vectors = np.linalg.eigh(z @ z.T)
    keep = values > values.max() * RANK_TOLERANCE
    root = np.sqrt(values[keep])
    return vectors[:, keep] * root, z.T @ (vectors[:, keep] / root)


def _fit_standardised(x: np.ndarray, y: np.ndarray, seed: int, c: float | None, cs: tuple[float, ...]) -> Probe:
    mean, scale = standardisation(x)
    z = (x - mean) / scale
    basis = None
    if z.shape[1] > WIDE * z.shape[0] and z.any():  # (all features constant: nothing spans, fit as it is)
        # Far wider than long (8 064 pooled MiniLM features for 1 424 AMP records; a fused series
        # reading, 16 000 numbers for a few hundred series): an L2-penalised logistic regression's
        # weights lie in the span of its training rows, so it is fitted on the rows' coordinates in
        # that span and mapped back. The same model up to the solver's tolerance, and every fit of
        # the C search costs n instead of d per row.
        z, basis = row_space(z)
    folds = cv_folds(y)
    if c is None and folds >= 2:
        with warnings.catch_warnings():  # scikit-learn 1.9 announces 1.10's parameter changes; C_ stays
            warnings.simplefilter("ignore", FutureWarning)
            model = LogisticRegressionCV(Cs=list(cs), cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                         scoring="neg_log_loss", max_iter=2000, random_state=seed).fit(z, y)
        c = float(np.atleast_1d(model.C_)[0])
        fold_scores = next(iter(model.scores_.values()))  # (folds, Cs) negative log-loss, the same for every class
        cv_log_loss = float(-fold_scores.mean(axis=0).max())
    else:
        c, cv_log_loss = 1.0 if c is None else c, None
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(z, y)
    coef = model.coef_ if basis is None else model.coef_ @ basis.T
    return Probe(coef, model.intercept_, mean, scale, c, cv_log_loss)


def _fit_per_view(x: np.ndarray, y: np.ndarray, seed: int, c: float | None, cs: tuple[float, ...],
                  views: int) -> Probe:
    """The probe of each view's principal components, as a probe of the full-width features:
    logit = w . ((P (x - mu) - m) / s) + b = (w / s) P . (x - mu) + b - (w / s) . m."""
    blocks = np.split(x, views, axis=1)  # one block per view (np.split refuses unequal ones)
    components = min(VIEW_COMPONENTS, len(x), blocks[0].shape[1])
    pcas = [PCA(components, random_state=seed) for _ in blocks]
    reduced = np.concatenate([pca.fit_transform(block) for pca, block in zip(pcas, blocks)], axis=1)
    inner = _fit_standardised(reduced, y, seed, c, cs)
    weight = inner.coef / inner.scale
    coef = np.concatenate([w @ p.components_ for w, p in zip(np.split(weight, views, axis=1), pcas)], axis=1)
    return Probe(coef, inner.intercept - weight @ inner.mean, np.concatenate([p.mean_ for p in pcas]),
                 np.ones(x.shape[1]), inner.c, inner.cv_log_loss)


def _fit_per_block(x: np.ndarray, y: np.ndarray, seed: int, c: tuple[float, ...] | None, cs: tuple[float, ...],
                   blocks: tuple[tuple[int, int], ...]) -> Probe:
    """A probe of each block of columns alone (its own C), averaged: the mean of the blocks' log-probabilities
    is, renormalised, the softmax of the mean of their logits, so the average is one probe of the full width
    whose weights are the sum of each block's divided by the number of blocks. Blocks may overlap (a trained
    view's block holds its start's columns too, which are a block of their own): a column is standardised
    alike in every block. Columns of no block get no weight. A block listed k times counts as k members of
    the average (a weight, not k fits: it is fitted once; c, one C per listing). Late fusion of the sources'
    probes; no cross-validated log-loss of the average (None)."""
    if not blocks or any(not 0 <= start < end <= x.shape[1] for start, end in blocks):
        raise ValueError(f"blocks {blocks} are not non-empty column ranges of the {x.shape[1]} features")
    keys = [(start, end, None if c is None else c[i]) for i, (start, end) in enumerate(blocks)]
    fitted = {key: _fit_standardised(x[:, key[0]:key[1]], y, seed, key[2], cs) for key in dict.fromkeys(keys)}
    probes = [fitted[key] for key in keys]
    coef = np.zeros((probes[0].coef.shape[0], x.shape[1]))
    mean, scale = standardisation(x)  # as each block's own
    for (start, end), probe in zip(blocks, probes):
        coef[:, start:end] += probe.coef
    return Probe(coef / len(probes), np.mean([p.intercept for p in probes], axis=0), mean, scale,
                 tuple(p.c for p in probes))

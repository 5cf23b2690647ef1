"""Wasserstein-1 distances between two point clouds, over POT.

Plain arrays in, a `Distance` out (POT's convention: small functions, numbers
out). Every point cloud has uniform weights and the ground cost is the
Euclidean distance, so `exact` is the W1 of Voice2Series' Theorem 1.

    exact      ot.emd2 on the full cost matrix: the exact empirical W1.
               Memory n*m*8 bytes and super-quadratic time: up to a few
               thousand points per side.
    sinkhorn   ot.sinkhorn2 with entropic regularisation reg * median ground
               cost (reg = 0.02: about 3 % above exact W1); returns the
               transport cost of the entropic plan, an upper bound on exact
               W1 that tends to it as reg -> 0. Memory n*m*8 bytes.
    sliced     ot.sliced_wasserstein_distance with p=1: the mean 1-D W1 over
               random directions. A different quantity: a lower bound on W1
               (projections are 1-Lipschitz), equal to it in 1-D; for a pure
               translation by v in d dimensions it is |v| * c_d with
               c_d = Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)) ~ sqrt(2 / (pi d)).
               Linear in n: any size.
    auto       fast at any size: exact on every point up to 2500 x 2500 pairs,
               beyond that exact W1 on random subsamples, with a bootstrap CI.
               It keeps the theorem's quantity (W1, not sliced).

Large sets: when the cost matrix of exact or sinkhorn would exceed
`memory_limit` (2 GiB), and for auto beyond its limit, the distance is
estimated on `resamples` draws of `subsample` points from each side; the
reported value is their mean, and `interval` a 95 % percentile-bootstrap
confidence interval of that mean: it covers the expected W1 of subsamples of
that size, not the full-set W1, which subsampling overestimates (see below). Beware that
the empirical W1 between finite samples is biased upwards, strongly in high
dimension (two samples of the same 384-d Gaussian are far apart in W1), so
values are comparable only at equal sample sizes and dimension.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import ot

from xmodal.errors import DataError

METHODS = ("exact", "sinkhorn", "sliced", "auto")


@dataclass
class Distance:
    """A W1 estimate and how it was obtained."""

    value: float
    method: str  # the method actually used: exact, sinkhorn, sliced, or exact-subsampled / sinkhorn-subsampled
    n_source: int
    n_target: int
    dimension: int
    interval: tuple[float, float] | None = None  # 95 % bootstrap CI of the subsampled mean
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def as_points(points, name: str) -> np.ndarray:
    """A non-empty, finite (n, d) float64 array; a 1-D array is n points in 1-D."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{name} must be an (n, d) array of n points, got shape {array.shape}")
    if len(array) == 0 or array.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {array.shape}); give at least one point")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise DataError(f"{name} holds NaN or infinite values in {bad} of {len(array)} points; remove or impute them")
    return array


def _check_pair(source, target) -> tuple[np.ndarray, np.ndarray]:
    source, target = as_points(source, "source points"), as_points(target, "target points")
    if source.shape[1] != target.shape[1]:
        raise DataError(
            f"source points have dimension {source.shape[1]} but target points {target.shape[1]}; "
            "both must come from the same representation (same model, same layer)"
        )
    return source, target


def exact_w1(source: np.ndarray, target: np.ndarray) -> float:
    cost = ot.dist(source, target, metric="euclidean")
    return float(ot.emd2([], [], cost, numItermax=10_000_000))


def sinkhorn_w1(source: np.ndarray, target: np.ndarray, reg: float = 0.02) -> float:
    """Transport cost of the entropic plan; `reg` is relative to the median ground cost."""
    cost = ot.dist(source, target, metric="euclidean")
    scale = float(np.median(cost)) or 1.0
    weights_s = np.full(len(source), 1.0 / len(source))
    weights_t = np.full(len(target), 1.0 / len(target))
    scaled = cost / scale
    # The plain (multiplicative) iterations are ~40x faster than log-domain ones but
    # exp(-cost / reg) underflows past ~700: fall back to log-domain only then.
    method = "sinkhorn" if scaled.max() / reg < 600 else "sinkhorn_log"
    # sinkhorn2 returns <plan, scaled cost>, the linear part without the entropy term.
    return float(ot.sinkhorn2(weights_s, weights_t, scaled, reg, method=method, numItermax=10_000, stopThr=1e-6)) * scale


def sliced_w1(source: np.ndarray, target: np.ndarray, n_projections: int = 200, seed: int = 0) -> float:
    return float(ot.sliced_wasserstein_distance(source, target, n_projections=n_projections, p=1, seed=seed))


def sliced_translation_factor(dimension: int) -> float:
    """c_d: the sliced W1 of a translation by a unit vector in `dimension` dimensions."""
    return math.exp(math.lgamma(dimension / 2) - math.lgamma((dimension + 1) / 2)) / math.sqrt(math.pi)


def _subsampled(distance, source, target, max_points: int, resamples: int, seed: int) -> tuple[float, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        s = source[rng.choice(len(source), min(max_points, len(source)), replace=False)]
        t = target[rng.choice(len(target), min(max_points, len(target)), replace=False)]
        values.append(distance(s, t))
    # Percentile bootstrap of the mean over the draws: a 95 % CI for the expected
    # W1 of `max_points`-point subsamples (not for the full-set W1, see the module notes).
    means = rng.choice(values, size=(1000, len(values))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(np.mean(values)), (float(low), float(high))


def wasserstein1(source, target, method: str = "auto", *, reg: float = 0.02, n_projections: int = 200,
                 seed: int = 0, subsample: int = 1000, resamples: int = 10,
                 memory_limit: int = 2 * 1024**3, auto_limit: int = 2500 * 2500) -> Distance:
    """W1 between two point clouds (rows are points) by the named method.

    exact and sinkhorn use every point while their cost matrix fits in
    `memory_limit` bytes, and subsample beyond. auto is exact on every point
    up to `auto_limit` pairs and exact on subsamples beyond: it answers in
    seconds at any size."""
    if method not in METHODS:
        raise DataError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    source, target = _check_pair(source, target)
    if reg <= 0 or n_projections < 1 or subsample < 2 or resamples < 2:
        raise DataError("reg must be positive, n_projections >= 1, subsample >= 2 and resamples >= 2")
    start = time.perf_counter()
    pairs = len(source) * len(target)
    if method == "sliced":
        value, interval, used = sliced_w1(source, target, n_projections, seed), None, "sliced"
        settings = {"n_projections": n_projections, "seed": seed, "p": 1}
    else:
        full = pairs <= auto_limit if method == "auto" else pairs * 8 <= memory_limit
        method = "exact" if method == "auto" else method
        if method == "exact":
            distance, settings = exact_w1, {"ground_cost": "euclidean"}
        else:
            distance = partial(sinkhorn_w1, reg=reg)
            settings = {"ground_cost": "euclidean", "reg": reg, "reg_relative_to": "median ground cost"}
        if full:
            value, interval, used = distance(source, target), None, method
        else:
            value, interval = _subsampled(distance, source, target, subsample, resamples, seed)
            used = f"{method}-subsampled"
            settings |= {"subsample": subsample, "resamples": resamples, "seed": seed, "interval": "95 % percentile bootstrap of the mean over the draws"}
    return Distance(value=value, method=used, n_source=len(source), n_target=len(target),
                    dimension=source.shape[1], interval=interval, settings=settings,
                    seconds=time.perf_counter() - start)

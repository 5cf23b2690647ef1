"""W1 estimators: known answers, agreement between methods, sizes, bad input."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from xmodal.alignment import sliced_translation_factor, wasserstein1
from xmodal.errors import DataError


def gaussian_quantiles(n: int, mean: float, std: float) -> np.ndarray:
    """n points at the (i + 0.5)/n quantiles: an empirical measure very close to the Gaussian."""
    return (mean + std * norm.ppf((np.arange(n) + 0.5) / n))[:, None]


def closed_form_w1_1d(mean_gap: float, std_gap: float) -> float:
    """W1 between two 1-D Gaussians: E|a + bZ| with a the mean gap, b the std gap."""
    a, b = mean_gap, abs(std_gap)
    return b * math.sqrt(2 / math.pi) * math.exp(-a * a / (2 * b * b)) + a * (1 - 2 * norm.cdf(-a / b))


@pytest.mark.parametrize("method", ["exact", "sliced"])
def test_1d_gaussians_match_the_closed_form(method):
    source, target = gaussian_quantiles(2000, 0.0, 1.0), gaussian_quantiles(2000, 0.3, 2.0)
    expected = closed_form_w1_1d(0.3, 1.0)
    assert wasserstein1(source, target, method).value == pytest.approx(expected, rel=2e-3)


def test_translation_by_v_gives_its_length_for_exact_w1():
    points = np.random.default_rng(0).normal(size=(400, 3))
    v = np.array([1.0, 2.0, 2.0])
    assert wasserstein1(points, points + v, "exact").value == pytest.approx(3.0, abs=1e-9)


def test_nd_gaussians_with_equal_covariance_are_their_mean_gap_apart():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(1500, 2))
    target = rng.normal(size=(1500, 2)) + np.array([3.0, 4.0])
    # Independent samples: the empirical W1 exceeds 5 by a small sampling bias in 2-D.
    assert wasserstein1(source, target, "exact").value == pytest.approx(5.0, abs=0.15)


@pytest.mark.parametrize("method", ["exact", "sliced"])
def test_identical_sets_are_at_distance_zero(method):
    points = np.random.default_rng(2).normal(size=(300, 5))
    # ot.dist computes sqrt(|x|² + |y|² - 2xy): zero up to rounding.
    assert wasserstein1(points, points.copy(), method).value == pytest.approx(0.0, abs=1e-6)


def test_sinkhorn_on_identical_sets_only_pays_its_entropic_blur():
    points = np.random.default_rng(2).normal(size=(300, 5))
    # The entropic plan spreads mass to neighbours; with reg = 0.02 x median cost it stays tiny.
    assert 0 <= wasserstein1(points, points.copy(), "sinkhorn").value < 0.1


@pytest.mark.parametrize("dimension", [2, 5, 35])
def test_sinkhorn_agrees_with_exact_within_five_percent(dimension):
    rng = np.random.default_rng(dimension)
    source = rng.normal(size=(600, dimension))
    target = rng.normal(size=(700, dimension)) * 1.5 + 1.0
    exact = wasserstein1(source, target, "exact").value
    sinkhorn = wasserstein1(source, target, "sinkhorn").value
    assert exact <= sinkhorn * (1 + 1e-6) and sinkhorn == pytest.approx(exact, rel=0.05)


def test_sliced_is_a_lower_bound_equal_to_the_slicing_factor_for_a_translation():
    points = np.random.default_rng(3).normal(size=(500, 8))
    v = np.full(8, 0.5)
    sliced = wasserstein1(points, points + v, "sliced", n_projections=4000).value
    exact = wasserstein1(points, points + v, "exact").value
    assert sliced <= exact
    assert sliced == pytest.approx(np.linalg.norm(v) * sliced_translation_factor(8), rel=0.03)


def test_sliced_is_reproducible_with_its_seed():
    rng = np.random.default_rng(4)
    source, target = rng.normal(size=(200, 6)), rng.normal(size=(250, 6)) + 1
    first = wasserstein1(source, target, "sliced", seed=7)
    assert wasserstein1(source, target, "sliced", seed=7).value == first.value
    assert wasserstein1(source, target, "sliced", seed=8).value != first.value
    assert first.settings == {"n_projections": 200, "seed": 7, "p": 1}


def test_auto_is_exact_when_small_and_subsamples_with_an_interval_when_large():
    rng = np.random.default_rng(5)
    source, target = rng.normal(size=(400, 4)), rng.normal(size=(400, 4)) + 2
    small = wasserstein1(source, target, "auto")
    assert small.method == "exact" and small.interval is None
    assert small.value == wasserstein1(source, target, "exact").value
    large = wasserstein1(source, target, "auto", auto_limit=100 * 100, subsample=150, resamples=8)
    assert large.method == "exact-subsampled" and large.settings["subsample"] == 150
    low, high = large.interval
    assert low <= large.value <= high
    assert large.value == pytest.approx(small.value, rel=0.15)  # subsampling bias is upward and small in 4-D


def test_exact_subsamples_when_the_cost_matrix_would_not_fit():
    rng = np.random.default_rng(6)
    source, target = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    result = wasserstein1(source, target, "exact", memory_limit=8 * 100 * 100, subsample=100, resamples=4)
    assert result.method == "exact-subsampled" and result.interval is not None


@pytest.mark.parametrize("source, target, message", [
    (np.zeros((0, 3)), np.zeros((4, 3)), "source points is empty"),
    (np.zeros((4, 3)), np.zeros((4, 2)), "dimension 3 but target points 2"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), np.zeros((2, 2)), "NaN or infinite values in 1 of 2"),
    (np.zeros((2, 2, 2)), np.zeros((2, 2)), "must be an (n, d) array"),
])
def test_bad_point_sets_are_named(source, target, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wasserstein1(source, target, "exact")


def test_unknown_method_is_named():
    with pytest.raises(DataError, match="unknown method 'emd'"):
        wasserstein1(np.zeros((2, 2)), np.ones((2, 2)), "emd")

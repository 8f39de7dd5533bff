"""Wilson and Clopper-Pearson intervals and the two-proportion z test against known values."""

import math

import numpy as np
import pytest
from scipy import stats

from scoring.eps import auto_eps, eps50, equal_volume_l2
from scoring.stats import clopper_pearson_lower, two_proportion_z_test, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [  # published values (statsmodels' proportion_confint(k, n, method="wilson"))
        (5, 10, (0.236593, 0.763407)),
        (0, 10, (0.0, 0.277533)),
        (10, 10, (0.722467, 1.0)),
        (81, 263, (0.255289, 0.366210)),
        (1, 1, (0.206549, 1.0)),
    ],
)
def test_wilson_matches_known_values(k, n, expected):
    assert wilson_interval(k, n) == pytest.approx(expected, abs=1e-6)


def test_wilson_closed_form_and_coverage_level():
    k, n, z = 37, 50, stats.norm.ppf(0.95)
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(k, n, confidence=0.9) == pytest.approx((center - half, center + half))
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_clopper_pearson_lower_bound():
    k = np.array([0, 1, 37, 99, 100])
    lower = clopper_pearson_lower(k, 100, 0.05)
    assert lower[0] == 0.0
    assert lower[-1] == pytest.approx(0.05 ** (1 / 100))  # closed form at k = n
    for ki, lo in zip(k[1:], lower[1:], strict=True):  # P(X >= k | p = lower) = alpha
        assert stats.binom.sf(ki - 1, 100, lo) == pytest.approx(0.05, rel=1e-6)


def test_two_proportion_z_test_known_values():
    z, p = two_proportion_z_test(80, 100, 60, 100)
    assert z == pytest.approx(-0.2 / math.sqrt(0.7 * 0.3 * 0.02))
    assert p == pytest.approx(stats.norm.cdf(z))
    assert two_proportion_z_test(60, 100, 80, 100)[1] > 0.99  # a rise is no drop
    assert two_proportion_z_test(100, 100, 100, 100) == (0.0, 1.0)
    assert two_proportion_z_test(50, 100, 45, 100)[1] == pytest.approx(0.239475, abs=1e-6)


def test_auto_eps_and_eps50():
    import torch

    x = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert auto_eps(x, "linf", (0.0, 255.0)) == pytest.approx((1, 2, 4, 8, 16))
    l2 = auto_eps(x, "l2", (0.0, 1.0))
    assert l2[3] == pytest.approx(equal_volume_l2(8 / 255, 48))
    assert equal_volume_l2(1.0, 3) == pytest.approx((6 / math.pi) ** (1 / 3))  # sphere volume
    assert eps50([0.1, 0.2], [0.45, 0.1], clean=0.9) == pytest.approx(0.1)
    assert eps50([0.1, 0.2], [0.2, 0.1], clean=0.8) == pytest.approx(0.1 * 0.4 / 0.6)
    assert eps50([0.1], [0.0], clean=0.0) == 0.0

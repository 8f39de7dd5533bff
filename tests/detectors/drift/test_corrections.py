import numpy as np
import pytest
from scipy import stats

from detectors.drift.corrections import (
    CORRECTIONS,
    CorrectionResult,
    benjamini_hochberg,
    bonferroni,
)
from detectors.exceptions import DataError, ParameterError


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        ([0.01, 0.2, 0.5, 0.9], CorrectionResult(True, 0.0125, 0.04)),
        ([0.02, 0.3], CorrectionResult(True, 0.025, 0.04)),
        ([0.03, 0.3], CorrectionResult(False, 0.025, 0.06)),
        ([0.6, 0.9], CorrectionResult(False, 0.025, 1.0)),
        ([0.05], CorrectionResult(True, 0.05, 0.05)),
    ],
)
def test_bonferroni_hand_computed(p, expected):
    got = bonferroni(np.array(p), alpha=0.05)
    assert got.reject is expected.reject
    assert got.threshold == pytest.approx(expected.threshold, abs=1e-15)
    assert got.p_value == pytest.approx(expected.p_value, abs=1e-15)


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # adjusted: 4 * 0.01 / 1, 4 * 0.02 / 2, 4 * 0.03 / 3, 0.5: three rejected, cut 3 * 0.05 / 4
        ([0.03, 0.5, 0.01, 0.02], CorrectionResult(True, 0.0375, 0.04)),
        # adjusted: 0.08, 0.045: both rejected (Bonferroni rejects neither: 2 * 0.04 > 0.05)
        ([0.04, 0.045], CorrectionResult(True, 0.05, 0.045)),
        # adjusted: 0.3, 0.4, 0.6: nothing rejected, the threshold is the first step alpha / d
        ([0.1, 0.6, 0.4], CorrectionResult(False, 0.05 / 3, 0.3)),
        ([0.7], CorrectionResult(False, 0.05, 0.7)),
    ],
)
def test_benjamini_hochberg_hand_computed(p, expected):
    got = benjamini_hochberg(np.array(p), alpha=0.05)
    assert got.reject is expected.reject
    assert got.threshold == pytest.approx(expected.threshold, abs=1e-15)
    assert got.p_value == pytest.approx(expected.p_value, abs=1e-15)


def test_bonferroni_rejects_where_benjamini_hochberg_does_not_need_to():
    p = np.array([0.04, 0.045])
    assert not bonferroni(p, 0.05).reject
    assert benjamini_hochberg(p, 0.05).reject


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_benjamini_hochberg_matches_scipy(seed, alpha):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 40))
    p = rng.uniform(size=d) ** rng.uniform(1, 6)  # from null-like to strongly non-null
    adjusted = stats.false_discovery_control(p, method="bh")
    got = benjamini_hochberg(p, alpha)
    assert got.p_value == pytest.approx(adjusted.min(), rel=1e-12, abs=0)
    assert got.reject == bool((adjusted <= alpha).any())
    np.testing.assert_array_equal(p <= got.threshold, adjusted <= alpha)


@pytest.mark.parametrize("seed", range(10))
def test_bonferroni_matches_definition(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=int(rng.integers(1, 40))) ** 3
    got = bonferroni(p, 0.05)
    assert got.p_value == min(1.0, p.size * p.min())
    assert got.reject == bool((p <= 0.05 / p.size).any())


@pytest.mark.parametrize("correction", [bonferroni, benjamini_hochberg])
def test_one_p_value_is_left_alone(correction):
    assert correction([0.03], 0.05) == CorrectionResult(True, 0.05, 0.03)


@pytest.mark.parametrize("correction", [bonferroni, benjamini_hochberg])
@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, float("nan"), "0.05", True, None])
def test_bad_alpha(correction, alpha):
    match = f"The 'alpha' parameter of {correction.__name__} must be a float in \\(0, 1\\)"
    with pytest.raises(ParameterError, match=match):
        correction([0.5], alpha)


@pytest.mark.parametrize("correction", [bonferroni, benjamini_hochberg])
@pytest.mark.parametrize("p", [[], [0.5, 1.2], [-0.1], [np.nan, 0.2], [[0.1, 0.2]]])
def test_bad_p_values(correction, p):
    with pytest.raises(DataError, match="non-empty 1-D array of p-values in \\[0, 1\\]"):
        correction(p, 0.05)


def test_corrections_by_name():
    assert dict(CORRECTIONS) == {"bonferroni": bonferroni, "fdr": benjamini_hochberg}

import numpy as np
import pytest
from scipy import stats

from detectors.drift import CVMDrift
from detectors.drift.corrections import benjamini_hochberg
from detectors.drift.cvm import cvm_limit_cdf


def _data(rng, n_ref, n, d, kind):
    if kind == "ties":
        return (rng.integers(0, 6, (n_ref, d)).astype(float),
                rng.integers(0, 6, (n, d)).astype(float))  # fmt: skip
    return rng.normal(size=(n_ref, d)), rng.normal(size=(n, d)) + np.linspace(0.0, 0.6, d)


SMALL = [(2, 2), (7, 3), (12, 12), (20, 8), (21, 5), (40, 25)]
CASES = [
    (n_ref, n, m)
    for n_ref, n in SMALL
    for m in ("auto", "asymptotic", "exact")
    if not (m == "exact" and n_ref + n > 41)
]  # scipy's exact null takes seconds beyond


@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize(("n_ref", "n", "method"), CASES)
def test_matches_cramervonmises_2samp_small(n_ref, n, method, kind):
    rng = np.random.default_rng(n_ref * 100 + n)
    x_ref, x = _data(rng, n_ref, n, 3, kind)
    r = CVMDrift(method=method).fit(x_ref).test(x)
    expected = stats.cramervonmises_2samp(x_ref, x, method=method, axis=0)
    np.testing.assert_allclose(r.feature_statistics, expected.statistic, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r.feature_p_values, expected.pvalue, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize(("n_ref", "n"), [(1000, 200), (300, 300), (5000, 50)])
def test_matches_cramervonmises_2samp_large(n_ref, n, kind):
    rng = np.random.default_rng(n_ref + n)
    x_ref, x = _data(rng, n_ref, n, 5, kind)
    r = CVMDrift().fit(x_ref).test(x)
    expected = stats.cramervonmises_2samp(x_ref, x, axis=0)
    np.testing.assert_allclose(r.feature_statistics, expected.statistic, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r.feature_p_values, expected.pvalue, rtol=0, atol=1e-6)


def test_limit_cdf_against_known_quantiles():
    # Anderson and Darling (1952): the limit law's 90%, 95% and 99% points
    np.testing.assert_allclose(cvm_limit_cdf(np.array([0.34730, 0.46136, 0.74346])),
                               [0.90, 0.95, 0.99], atol=2e-5)  # fmt: skip


def test_result_and_corrections():
    rng = np.random.default_rng(4)
    x_ref, x = _data(rng, 500, 200, 6, "continuous")
    r = CVMDrift(p_val=0.01).fit(x_ref).test(x)
    assert (r.detector, r.threshold, r.statistic) == ("cvm", 0.01 / 6, r.feature_statistics.max())
    assert r.p_value == min(1.0, 6 * r.feature_p_values.min())
    r = CVMDrift(correction="fdr").fit(x_ref).test(x)
    bh = benjamini_hochberg(r.feature_p_values, 0.05)
    assert (r.is_drift, r.threshold, r.p_value) == (bh.reject, bh.threshold, bh.p_value)


def test_calibrated():
    """500 undrifted windows at p_val 0.05: false positives within a 99% binomial interval."""
    rng = np.random.default_rng(10)
    lo, hi = stats.binom.interval(0.99, 500, 0.05)
    hits = sum(CVMDrift().fit(rng.normal(size=(200, 1))).test(rng.normal(size=(100, 1))).is_drift
               for _ in range(500))  # fmt: skip
    assert lo <= hits <= hi


@pytest.mark.parametrize("seed", range(3))
def test_flags_a_variance_change_the_mean_leaves_alone(seed):
    rng = np.random.default_rng(seed)
    det = CVMDrift().fit(rng.normal(size=(1000, 8)))
    x = rng.normal(size=(300, 8))
    x[:, 5] *= 1.5
    r = det.test(x)
    assert r.is_drift and int(np.argmin(r.feature_p_values)) == 5


def test_flags_a_mean_shift():
    rng = np.random.default_rng(3)
    det = CVMDrift().fit(rng.normal(size=(1000, 16)))
    x = rng.normal(size=(200, 16))
    x[:, 2] += 0.5
    assert det.test(x).is_drift

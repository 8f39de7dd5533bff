import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from detectors.drift import JensenShannonDrift, PSIDrift, WassersteinDrift
from detectors.drift._distance import bin_proportions


@pytest.mark.parametrize(("n_ref", "n"), [(2, 2), (7, 3), (1000, 400), (999, 77), (64, 64)])
def test_wasserstein_matches_scipy(n_ref, n):
    rng = np.random.default_rng(n_ref + n)
    x_ref, x = rng.normal(size=(n_ref, 4)) * [1, 2, 3, 4], rng.exponential(size=(n, 4))
    x[:, 3] = np.round(x[:, 3])  # ties
    got = WassersteinDrift().fit(x_ref).test(x).feature_statistics
    expected = [stats.wasserstein_distance(x_ref[:, j], x[:, j]) / x_ref[:, j].std()
                for j in range(4)]  # fmt: skip
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_wasserstein_constant_reference_feature_is_not_normed():
    det = WassersteinDrift().fit(np.column_stack([np.ones(50), np.arange(50.0)]))
    assert det.scale_[0] == 1.0
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    assert det.test(x).feature_statistics[0] == pytest.approx(2.0)


def test_bins_are_reference_quantiles():
    rng = np.random.default_rng(0)
    x_ref = rng.normal(size=(1000, 2))
    det = PSIDrift(n_bins=4).fit(x_ref)
    np.testing.assert_allclose(det.edges_, np.quantile(x_ref, [0.25, 0.5, 0.75], axis=0).T)
    np.testing.assert_allclose(det.reference_shares_, 0.25, atol=0.002)
    x = np.array([[-9.0, 0.0], [9.0, 0.0]])  # beyond the reference: the end bins
    np.testing.assert_array_equal(bin_proportions(x, det.edges_)[0], [0.5, 0, 0, 0.5])


def test_psi_is_the_formula_on_floored_shares():
    rng = np.random.default_rng(1)
    x_ref, x = rng.normal(size=(500, 3)), rng.normal(0.4, size=(300, 3))
    det = PSIDrift(n_bins=8).fit(x_ref)
    r = det.test(x)
    p = np.maximum(det.reference_shares_, 1e-4)
    q = np.maximum(bin_proportions(x, det.edges_), 1e-4)
    np.testing.assert_allclose(r.feature_statistics, ((q - p) * np.log(q / p)).sum(1))
    assert (r.p_value, r.p_val, r.feature_p_values, r.threshold) == (None, None, None, 0.2)
    assert r.is_drift == (r.statistic > 0.2)


def test_jensen_shannon_matches_scipy():
    rng = np.random.default_rng(2)
    x_ref, x = rng.normal(size=(800, 3)), rng.standard_t(3, size=(200, 3))
    det = JensenShannonDrift(n_bins=12).fit(x_ref)
    q = bin_proportions(x, det.edges_)
    expected = jensenshannon(det.reference_shares_, q, base=2, axis=1)
    np.testing.assert_allclose(det.test(x).feature_statistics, expected, atol=1e-12)


@pytest.mark.parametrize("cls", [PSIDrift, JensenShannonDrift, WassersteinDrift])
def test_default_thresholds_quiet_without_drift_and_flag_a_half_sd_shift(cls):
    """Distances are not calibrated to a sample size: quiet only with large samples."""
    rng = np.random.default_rng(3)
    det = cls().fit(rng.normal(size=(5000, 3)))
    quiet = sum(det.test(rng.normal(size=(2000, 3))).is_drift for _ in range(30))
    assert quiet == 0
    x = rng.normal(size=(2000, 3))
    x[:, 2] += 0.5
    r = det.test(x)
    assert r.is_drift and int(np.argmax(r.feature_statistics)) == 2


def test_distances_flag_a_categorical_mix_change():
    rng = np.random.default_rng(4)
    x_ref = rng.choice(4, size=(2000, 1), p=[0.4, 0.3, 0.2, 0.1]).astype(float)
    x = rng.choice(4, size=(500, 1), p=[0.1, 0.2, 0.3, 0.4]).astype(float)
    for det in (PSIDrift(n_bins=4), JensenShannonDrift(n_bins=4)):
        assert det.fit(x_ref).test(x).is_drift
        assert not det.test(rng.choice(4, size=(500, 1), p=[0.4, 0.3, 0.2, 0.1])).is_drift

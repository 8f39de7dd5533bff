import warnings

import numpy as np
import pytest
from scipy import stats

from detectors.drift import CVMDriftOnline
from detectors.drift._cvm_ranks import normalised_cvm as _normalised
from detectors.drift._cvm_ranks import null_ranks as _null_ranks
from detectors.drift._cvm_ranks import window_cvm as _window_stats
from tests.detectors.drift.test_mmd_online import _mean_run_time


def _scipy_normalised(ref, win):
    n, w = len(ref), len(win)
    big_n = n + w
    t = stats.cramervonmises_2samp(ref, win).statistic
    var = (
        (big_n + 1)
        * (4 * n * w * big_n - 3 * (n * n + w * w) - 2 * n * w)
        / (45 * big_n**2 * 4 * n * w)
    )
    return (t - (1 + 1 / big_n) / 6) / np.sqrt(var)


def test_every_step_is_scipys_cvm_of_its_windows():
    rng = np.random.default_rng(0)
    det = CVMDriftOnline(ert=50, window_sizes=(6, 15), n_bootstraps=2000)
    det.fit(rng.normal(size=(120, 2)))
    x = rng.normal(size=(200, 2))
    got = np.concatenate([det.update(x[:90]).step_statistics,
                          [det.update(row).statistic for row in x[90:]]])  # fmt: skip
    ref = det.x_ref_sorted_
    for t in range(6, 201, 7):
        expected = max(_scipy_normalised(ref[:, j], x[t - w : t, j])
                       for w in (6, 15) if t >= w for j in range(2))  # fmt: skip
        assert got[t - 1] == pytest.approx(expected, abs=1e-9)
    assert np.isnan(got[:5]).all()


def test_window_stats_from_rank_sums():
    ranks = _null_ranks(3, 12, 50, np.random.default_rng(1))
    got = _window_stats(ranks, 5, 50)
    for b in range(3):
        for e in range(5, 13):
            k = ranks[b, e - 5 : e]
            mx = sum(max(k[i], k[j]) for i in range(5) for j in range(i + 1, 5))
            assert got[b, e - 5] == pytest.approx(_normalised(k.sum(), (k * k).sum(), mx, 50, 5))


def test_null_ranks_follow_the_law_of_ranks_of_new_values():
    """The Pólya urn against sorting uniforms: P(two new values share a gap) = 2 / (n + 2)."""
    ranks = _null_ranks(100_000, 3, 20, np.random.default_rng(2))
    assert (ranks[:, 0] == ranks[:, 2]).mean() == pytest.approx(2 / 22, abs=0.004)
    assert ranks.min() == 0 and ranks.max() == 20
    assert ranks.mean() == pytest.approx(10, abs=0.05)


def test_warns_when_bootstraps_cannot_reach_the_tail():
    x = np.random.default_rng(3).normal(size=(100, 8))
    with pytest.warns(RuntimeWarning, match="too few to estimate a per-feature tail"):
        CVMDriftOnline(ert=200, window_sizes=(5,), n_bootstraps=1000).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CVMDriftOnline(ert=20, window_sizes=(5,)).fit(x[:, :1])


def test_mean_run_time_is_the_target_ert():
    """Averaged over references; a fixed reference's run time varies around it (see Notes)."""
    make = lambda i: CVMDriftOnline(ert=100, window_sizes=(5, 10), n_bootstraps=4000, seed=i)  # noqa: E731
    assert 75 <= _mean_run_time(make, n_ref=1000, d=1, seed=0) <= 125


@pytest.mark.parametrize("shift", [lambda x: x + 0.8, lambda x: x * 2.0], ids=["mean", "variance"])
def test_flags_a_change_soon_after_it_starts(shift):
    rng = np.random.default_rng(4)
    det = CVMDriftOnline(ert=200, window_sizes=(10, 30)).fit(rng.normal(size=(1000, 3)))
    assert not det.update(rng.normal(size=(100, 3))).is_drift
    x = rng.normal(size=(100, 3))
    x[:, 1] = shift(x[:, 1])
    r = det.update(x)
    assert r.is_drift and r.drift_step <= 100 + 60

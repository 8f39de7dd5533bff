import numpy as np
import pytest

from detectors.drift import MMDDriftOnline
from detectors.drift.kernels import bootstrap_window_mmd2 as _bootstrap
from detectors.drift.kernels import gaussian_kernel_np
from detectors.drift.online_base import run_length_thresholds


def _mmd2(ref, win, sigma):
    krr, kww = gaussian_kernel_np(ref, ref, sigma), gaussian_kernel_np(win, win, sigma)
    n, w = len(ref), len(win)
    within_r = (krr.sum() - np.trace(krr)) / (n * (n - 1))
    within = within_r + (kww.sum() - np.trace(kww)) / (w * (w - 1))
    return within - 2 * gaussian_kernel_np(ref, win, sigma).mean()


def test_every_step_is_the_mmd2_of_its_window_against_the_sub_reference():
    rng = np.random.default_rng(0)
    det = MMDDriftOnline(ert=50, window_size=8, n_bootstraps=300).fit(rng.normal(size=(100, 3)))
    x = rng.normal(size=(700, 3))  # long enough to wrap the ring many times
    stats = np.concatenate([det.update(x[:350]).step_statistics,
                            [det.update(row).statistic for row in x[350:]]])  # fmt: skip
    assert det.x_ref_.shape == (100 - 2 * 8 + 1, 3)
    z = x - det.center_  # the sub-reference is stored centred; MMD² is translation-invariant
    expected = [_mmd2(det.x_ref_, z[t - 8 : t], det.sigma_) for t in range(8, 701, 23)]
    np.testing.assert_allclose(stats[7::23], expected, rtol=0, atol=1e-6)  # float32 products


def test_bootstrap_statistics_are_brute_force_mmd2():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2))
    k = gaussian_kernel_np(x, x, 1.0)
    w, n_sub = 4, 30 - 7
    got = _bootstrap(k, (k.sum(1), k.sum() - np.trace(k)), n_sub, w, 3, np.random.default_rng(5))
    order = np.random.default_rng(5).permuted(np.broadcast_to(np.arange(30), (3, 30)), axis=1)
    for b in range(3):
        sub, stream = x[order[b, :n_sub]], x[order[b, n_sub:]]
        for t in range(w):
            assert got[b, t] == pytest.approx(_mmd2(sub, stream[t : t + w], 1.0), abs=1e-12)


def test_thresholds_give_the_hazard_on_bootstrap_streams():
    stats = np.random.default_rng(2).normal(size=(20_000, 5)).cumsum(1)  # dependent steps
    thresholds = run_length_thresholds(stats, 1 / 40)
    alive = np.ones(len(stats), dtype=bool)
    for t in range(5):
        alarms = alive & (stats[:, t] > thresholds[t])
        assert alarms.sum() / alive.sum() == pytest.approx(1 / 40, rel=0.02)
        alive &= ~alarms


def test_default_bootstrap_count_and_reference_size():
    det = MMDDriftOnline(ert=60, window_size=5).fit(np.random.default_rng(3).normal(size=(11, 2)))
    assert det.thresholds_.shape == (5,) and det.x_ref_.shape == (2, 2)


def _mean_run_time(make, n_ref, d, seed, n_refs=4, n_runs=100):
    """Steps from the first full window to the first alarm, on streams with no drift."""
    rng = np.random.default_rng(seed)
    times = []
    for i in range(n_refs):
        det = make(i).fit(rng.normal(size=(n_ref, d)))
        for _ in range(n_runs):
            det.reset()
            while not (r := det.update(rng.normal(size=(32, d)))).is_drift:
                pass
            times.append(r.drift_step - det.warmup)
    return float(np.mean(times))


def test_mean_run_time_is_the_target_ert():
    make = lambda i: MMDDriftOnline(ert=100, window_size=10, n_bootstraps=5000, seed=i)  # noqa: E731
    assert 75 <= _mean_run_time(make, n_ref=300, d=2, seed=0) <= 125


@pytest.mark.parametrize(
    "shift",
    [lambda x: x + np.array([1.0, 0.0]), lambda x: x * np.array([2.0, 1.0]),
     lambda x: np.column_stack([x[:, 0], 0.9 * x[:, 0] + 0.44 * x[:, 1]])],
    ids=["mean", "variance", "correlation"],
)  # fmt: skip
def test_flags_a_change_soon_after_it_starts(shift):
    rng = np.random.default_rng(4)
    det = MMDDriftOnline(ert=500, window_size=20, n_bootstraps=5000).fit(rng.normal(size=(500, 2)))
    assert not det.update(rng.normal(size=(100, 2))).is_drift
    r = det.update(shift(rng.normal(size=(100, 2))))
    assert r.is_drift and r.drift_step <= 100 + 60


@pytest.mark.parametrize("offset", [1e3, 1e5, -1e7])
def test_statistics_do_not_depend_on_the_datas_offset(offset):
    rng = np.random.default_rng(9)
    x_ref, x = rng.normal(size=(200, 4)), rng.normal(size=(40, 4))
    make = lambda: MMDDriftOnline(ert=100, window_size=10, n_bootstraps=500)  # noqa: E731
    plain, moved = make().fit(x_ref), make().fit(x_ref + offset)
    np.testing.assert_allclose(moved.thresholds_, plain.thresholds_, rtol=1e-9)
    np.testing.assert_allclose(moved.update(x + offset).step_statistics,
                               plain.update(x).step_statistics, atol=1e-6)  # fmt: skip

import re

import numpy as np
import pytest
import torch
from scipy import stats

from detectors.drift import KSDrift, MMDDrift, RandomProjection
from detectors.drift.kernels import (
    gaussian_kernel_np,
    median_heuristic,
    permutation_masks,
    unbiased_mmd2,
)
from detectors.exceptions import DeviceError


def _mmd2_u(x, y, sigma):
    kxx, kyy, kxy = (gaussian_kernel_np(a, b, sigma) for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within = within_x + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return within - 2 * kxy.mean()


@pytest.mark.parametrize(("n_ref", "n", "d"), [(50, 30, 1), (200, 100, 8), (120, 2, 3)])
def test_statistic_is_the_unbiased_mmd2(n_ref, n, d):
    rng = np.random.default_rng(d)
    x_ref, x = rng.normal(size=(n_ref, d)), rng.normal(0.3, size=(n, d))
    r = MMDDrift(device="cpu").fit(x_ref).test(x)
    sigma = median_heuristic(x_ref, np.random.default_rng(0))
    assert r.statistic == pytest.approx(_mmd2_u(x_ref, x, sigma), rel=1e-5, abs=1e-7)


def test_every_permutation_is_a_brute_force_mmd2():
    rng = np.random.default_rng(1)
    x_ref, x = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    z = np.vstack([x_ref, x])
    masks = permutation_masks(40, 25, 12, np.random.default_rng(5))
    k = torch.as_tensor(gaussian_kernel_np(z, z, 1.3))
    got = unbiased_mmd2(k[:40, :40], k[40:, :40], k[40:, 40:], torch.as_tensor(masks)).numpy()
    for row, value in zip(masks, got, strict=True):
        b = row.astype(bool)
        assert b.sum() == 25
        assert value == pytest.approx(_mmd2_u(z[~b], z[b], 1.3), abs=1e-12)
    assert got[0] == pytest.approx(_mmd2_u(x_ref, x, 1.3), abs=1e-12)


def test_p_value_counts_the_observed_split_and_is_never_zero():
    rng = np.random.default_rng(2)
    det = MMDDrift(n_permutations=49, device="cpu").fit(rng.normal(size=(100, 2)))
    r = det.test(rng.normal(size=(50, 2)) + 3.0)
    assert r.p_value == 1 / 50 and r.is_drift
    assert (r.feature_p_values, r.threshold, r.detector) == (None, 0.05, "mmd")
    p = det.test(rng.normal(size=(50, 2))).p_value
    assert round(p * 50) == pytest.approx(p * 50)  # (k + 1) / (P + 1)


def test_given_sigma_is_used_and_saved(tmp_path):
    rng = np.random.default_rng(3)
    x_ref, x = rng.normal(size=(60, 2)), rng.normal(size=(30, 2))
    det = MMDDrift(sigma=0.7, device="cpu").fit(x_ref)
    assert det.sigma_ == 0.7
    assert det.test(x).statistic == pytest.approx(_mmd2_u(x_ref, x, 0.7), rel=1e-5, abs=1e-7)
    assert MMDDrift.load(det.save(tmp_path)).sigma_ == 0.7


def test_median_heuristic_handles_repeated_rows():
    rng = np.random.default_rng(0)
    x = np.zeros((10, 2))
    assert median_heuristic(x, rng) == 1.0
    x[0] = 1.0  # most distances 0: the mean of the positive ones, 2, gives sigma = 1
    assert median_heuristic(x, rng) == 1.0


def test_seed_none_draws_fresh_permutations():
    rng = np.random.default_rng(4)
    det = MMDDrift(seed=None, device="cpu").fit(rng.normal(size=(80, 2)))
    x = rng.normal(size=(40, 2))
    assert len({det.test(x).p_value for _ in range(6)}) > 1


def test_device_cuda_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(DeviceError, match=re.escape("device='cuda' was asked for")):
        MMDDrift(device="cuda").fit(np.random.default_rng(0).normal(size=(20, 2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_answer():
    rng = np.random.default_rng(5)
    x_ref, x = rng.normal(size=(300, 8)), rng.normal(0.1, size=(150, 8))
    cpu, gpu = (MMDDrift(device=dev).fit(x_ref).test(x) for dev in ("cpu", "cuda"))
    assert gpu.p_value == cpu.p_value
    assert gpu.statistic == pytest.approx(cpu.statistic, rel=1e-4, abs=1e-7)


def test_calibrated():
    """500 undrifted windows at p_val 0.05: false positives within a 99% binomial interval."""
    rng = np.random.default_rng(12)
    lo, hi = stats.binom.interval(0.99, 500, 0.05)
    hits = sum(MMDDrift(device="cpu").fit(rng.normal(size=(60, 2))).test(rng.normal(size=(40, 2)))
               .is_drift for _ in range(500))  # fmt: skip
    assert lo <= hits <= hi


def _correlated(rng, n, rho):
    z = rng.normal(size=(n, 2))
    return np.column_stack([z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]])


@pytest.mark.parametrize(
    "shift",
    [
        lambda rng, n: rng.normal(size=(n, 4)) + np.array([0.5, 0, 0, 0]),  # mean
        lambda rng, n: rng.normal(size=(n, 4)) * np.array([1.6, 1, 1, 1]),  # variance
    ],
    ids=["mean", "variance"],
)
def test_flags_mean_and_variance_shifts(shift):
    rng = np.random.default_rng(6)
    det = MMDDrift(device="cpu").fit(rng.normal(size=(500, 4)))
    assert det.test(shift(rng, 200)).is_drift


def test_flags_a_correlation_change_that_feature_wise_tests_cannot_see():
    rng = np.random.default_rng(7)
    x_ref, x = _correlated(rng, 500, 0.0), _correlated(rng, 200, 0.8)
    assert MMDDrift(device="cpu").fit(x_ref).test(x).is_drift
    assert not KSDrift().fit(x_ref).test(x).is_drift  # same marginals


def test_random_projection_keeps_power_in_high_dimension():
    rng = np.random.default_rng(8)
    x_ref = rng.normal(size=(300, 200))
    x = rng.normal(size=(100, 200)) + 0.15  # a small shift on every feature
    det = MMDDrift(preprocess=RandomProjection(n_components=16, seed=0), device="cpu").fit(x_ref)
    assert det.x_ref_.shape == (300, 16)
    assert det.test(x).is_drift
    assert not det.test(rng.normal(size=(100, 200))).is_drift


@pytest.mark.parametrize("offset", [1e3, 1e5, -1e7])
def test_answers_do_not_depend_on_the_datas_offset(offset):
    """float32 kernels stay exact because inputs are centred on the reference mean."""
    rng = np.random.default_rng(9)
    x_ref, x = rng.normal(size=(300, 8)), rng.normal(size=(100, 8)) + 0.2
    plain = MMDDrift(device="cpu").fit(x_ref).test(x)
    moved = MMDDrift(device="cpu").fit(x_ref + offset).test(x + offset)
    assert moved.p_value == plain.p_value
    assert moved.statistic == pytest.approx(plain.statistic, rel=1e-4)

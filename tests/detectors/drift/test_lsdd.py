import numpy as np
import pytest
import torch
from scipy import stats

from detectors.drift import KSDrift, LSDDDrift
from detectors.drift.kernels import gaussian_kernel_np, permutation_masks
from detectors.exceptions import DataError


def _lsdd(ref, x, centers, sigma, h_inverse):
    h = gaussian_kernel_np(ref, centers, sigma).mean(0) - gaussian_kernel_np(
        x, centers, sigma
    ).mean(0)
    return h @ h_inverse @ h


def test_statistic_and_permutations_are_the_regularised_density_difference():
    rng = np.random.default_rng(0)
    x_ref, x = rng.normal(size=(200, 3)), rng.normal(size=(60, 3)) + 0.3
    det = LSDDDrift(n_permutations=20, device="cpu").fit(x_ref)
    z = (x - det.mean_) / det.scale_
    r = det.test(x)
    assert r.statistic == pytest.approx(
        _lsdd(det.x_ref_, z, det.centers_, det.sigma_, det.h_inverse_)
    )
    pooled = np.vstack([det.x_ref_, z])
    masks = permutation_masks(len(det.x_ref_), 60, 20, np.random.default_rng(0))
    perms = [_lsdd(pooled[m == 0], pooled[m == 1], det.centers_, det.sigma_, det.h_inverse_)
             for m in masks]  # fmt: skip
    assert r.p_value == (1 + sum(p >= perms[0] for p in perms[1:])) / 21


def test_fitted_model():
    rng = np.random.default_rng(1)
    x_ref = rng.normal(size=(400, 2)) * [1.0, 100.0] + 5.0
    det = LSDDDrift(n_kernel_centers=30, device="cpu").fit(x_ref)
    assert det.centers_.shape == (30, 2) and det.x_ref_.shape == (370, 2)
    np.testing.assert_allclose(det.scale_, x_ref.std(0))
    h = gaussian_kernel_np(det.centers_, det.centers_, np.sqrt(2) * det.sigma_)
    a = np.linalg.inv(h + det.lambda_ * np.eye(30))
    np.testing.assert_allclose(det.h_inverse_, 2 * a - a @ h @ a)
    assert det.lambda_ in 4.0 ** -np.arange(10)
    assert LSDDDrift(n_kernel_centers=30, device="cpu").fit(x_ref).lambda_ == det.lambda_


def test_reference_must_exceed_the_centres():
    with pytest.raises(DataError, match="with 10 kernel centres needs at least 14 reference rows"):
        LSDDDrift(n_kernel_centers=10).fit(np.random.default_rng(0).normal(size=(12, 2)))


def test_calibrated():
    """500 undrifted windows at p_val 0.05: false positives within a 99% binomial interval."""
    rng = np.random.default_rng(13)
    lo, hi = stats.binom.interval(0.99, 500, 0.05)
    hits = sum(LSDDDrift(device="cpu").fit(rng.normal(size=(80, 2))).test(rng.normal(size=(40, 2)))
               .is_drift for _ in range(500))  # fmt: skip
    assert lo <= hits <= hi


@pytest.mark.parametrize(
    "shift",
    [lambda x: x + np.array([0.5, 0.0, 0.0]), lambda x: x * np.array([1.0, 1.6, 1.0])],
    ids=["mean", "variance"],
)
def test_flags_mean_and_variance_shifts(shift):
    rng = np.random.default_rng(2)
    det = LSDDDrift(device="cpu").fit(rng.normal(size=(500, 3)))
    assert det.test(shift(rng.normal(size=(200, 3)))).is_drift


def test_flags_a_correlation_change():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(700, 2))
    x_ref = z[:500]
    x = np.column_stack([z[500:, 0], 0.8 * z[500:, 0] + 0.6 * z[500:, 1]])
    assert LSDDDrift(device="cpu").fit(x_ref).test(x).is_drift
    assert not KSDrift().fit(x_ref).test(x).is_drift


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_answer():
    rng = np.random.default_rng(5)
    x_ref, x = rng.normal(size=(300, 4)), rng.normal(0.1, size=(150, 4))
    cpu, gpu = (LSDDDrift(device=dev).fit(x_ref).test(x) for dev in ("cpu", "cuda"))
    assert gpu.p_value == cpu.p_value

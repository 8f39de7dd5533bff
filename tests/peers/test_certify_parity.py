"""Our randomized smoothing agrees with ART's ``RandomizedSmoothing`` (Cohen et al. 2019).

Both implement CERTIFY: ``n0`` noisy votes select the class, ``n`` more estimate its
probability, whose one-sided Clopper-Pearson lower bound ``p`` gives the radius
``sigma Φ⁻¹(p)``, or an abstention when ``p <= 1/2``. On the same votes the two must agree
exactly; on their own (independent) noise draws, within sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from benchmarks._peers import art_smoothing
from scoring import ABSTAIN, certify, predict
from scoring.certify import certify_counts
from tests.peers._parity import SIGMA

N0, N, ALPHA = 100, 2000, 0.001
POINTS = 100
Z_MAX = 4.5  # per point, two-sided: a false alarm on one of 100 points about once in 1,500 runs
SHAPE = (1, 8, 8)


def art_votes(radius: np.ndarray, n: int, sigma: float, alpha: float) -> np.ndarray:
    """The estimation-round votes behind each of ART's radii (it returns only the radius):
    the ``k`` whose Clopper-Pearson bound ``B(alpha; k, n - k + 1)`` equals ``Φ(r / sigma)``."""
    k = np.arange(1, n + 1)
    bounds = stats.beta.ppf(alpha, k, n - k + 1)
    p = stats.norm.cdf(np.asarray(radius) / sigma)
    return k[np.abs(bounds[None, :] - p[:, None]).argmin(1)]


def check_votes_agree(ours: np.ndarray, theirs: np.ndarray, n: int) -> None:
    """Two binomial counts out of ``n`` each, per point: fail where a pooled two-proportion
    z statistic exceeds ``Z_MAX`` (with a +2/+4 correction so that n/n is not a certainty)."""
    pooled = (ours + theirs + 2) / (2 * n + 4)
    z = (ours - theirs) / np.sqrt(2 * n * pooled * (1 - pooled))
    if (bad := np.abs(z) > Z_MAX).any():
        raise AssertionError(
            f"{int(bad.sum())} points' votes differ beyond sampling error: ours "
            f"{ours[bad].tolist()}, ART's {theirs[bad].tolist()} of {n} (|z| up to "
            f"{np.abs(z).max():.1f})"
        )


def art_certify(model, x: torch.Tensor, sigma: float, seed: int = 0):
    np.random.seed(seed)  # ART draws its noise from numpy's global generator
    smoothing = art_smoothing(model, SHAPE, 10, sigma=sigma, n0=N0, alpha=ALPHA)
    return smoothing.certify(x.numpy(), n=N, batch_size=N)


@pytest.fixture(scope="module")
def points(digits):
    return digits.x_test[:POINTS], digits.y_test[:POINTS].numpy()


@pytest.fixture(scope="module")
def art_result(noisy_model, points):
    return art_certify(noisy_model, points[0], SIGMA)


def ours_certify(model, x, sigma: float):
    return certify(model, x, sigma, n0=N0, n=N, alpha=ALPHA, batch_size=10_000, device="cpu")


def test_certify_matches_art_exactly_on_the_same_votes(noisy_model):
    """Feed ART's CERTIFY the votes ours decided on: same classes, abstentions and radii."""
    rng = np.random.default_rng(0)
    p_top = np.concatenate([[1.0, 0.0, 0.5, 0.52, 0.55], rng.uniform(0.3, 1.0, 195)])
    rows, top = np.arange(p_top.size), rng.integers(0, 10, p_top.size)
    counts0 = np.zeros((p_top.size, 10), dtype=np.int64)
    counts0[rows, top] = N0  # the selection round picks `top`
    k, counts = np.round(p_top * N).astype(np.int64), np.zeros_like(counts0)
    counts[rows, top], counts[rows, (top + 1) % 10] = k, N - k  # the estimation round
    ours, radius, _ = certify_counts(counts0, counts, SIGMA, ALPHA)

    smoothing = art_smoothing(noisy_model, SHAPE, 10, sigma=SIGMA, n0=N0, alpha=ALPHA)
    votes = iter([c for pair in zip(counts0, counts, strict=True) for c in pair])
    smoothing._prediction_counts = lambda x, n=None, batch_size=128: next(votes)
    theirs, art_radius = smoothing.certify(np.zeros((p_top.size, *SHAPE), np.float32), n=N)
    assert (ours == ABSTAIN).sum() >= 5 and (ours != ABSTAIN).sum() >= 100  # both branches
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(radius, art_radius, rtol=1e-9, atol=1e-12)


def test_certify_agrees_with_art_within_sampling_error(noisy_model, points, art_result, figures):
    x, y = points
    ours = ours_certify(noisy_model, x, SIGMA)
    art_pred, art_radius = art_result
    both = (ours.prediction != ABSTAIN) & (art_pred != ABSTAIN)
    figures(
        "certify: abstentions",
        f"{np.mean(ours.prediction == ABSTAIN):.0%}",
        f"{np.mean(art_pred == ABSTAIN):.0%}",
    )
    figures("certify: mean radius", f"{ours.radius.mean():.4f}", f"{art_radius.mean():.4f}")
    for r in (0.25, 0.5):
        art_acc = np.mean((art_pred == y) & (art_radius >= r))
        figures(
            f"certify: certified accuracy at {r}",
            f"{ours.certified_accuracy(y, [r])[0]:.0%}",
            f"{art_acc:.0%}",
        )

    assert both.sum() >= 0.9 * POINTS
    np.testing.assert_array_equal(ours.prediction[both], art_pred[both])
    assert (ours.prediction != art_pred).sum() <= 0.03 * POINTS  # near-ties may abstain once
    top_votes = ours.counts[np.flatnonzero(both), ours.prediction[both]]
    check_votes_agree(top_votes, art_votes(art_radius[both], N, SIGMA, ALPHA), N)
    assert abs(ours.radius.mean() - art_radius.mean()) < 0.01  # about 5 standard errors
    for r in (0.0, 0.25, 0.5):
        art_acc = np.mean((art_pred == y) & (art_radius >= r))
        assert abs(ours.certified_accuracy(y, [r])[0] - art_acc) <= 0.03


def test_the_certify_comparison_can_fail(noisy_model, points, art_result):
    """Votes drawn at sigma 0.3 instead of 0.25 are caught by the per-point check."""
    x, _ = points
    wrong = ours_certify(noisy_model, x, 0.3)
    art_pred, art_radius = art_result
    both = (wrong.prediction != ABSTAIN) & (art_pred == wrong.prediction)
    top_votes = wrong.counts[np.flatnonzero(both), wrong.prediction[both]]
    with pytest.raises(AssertionError, match="beyond sampling error"):
        check_votes_agree(top_votes, art_votes(art_radius[both], N, SIGMA, ALPHA), N)


def test_predict_agrees_with_art(noisy_model, points, figures):
    x, _ = points
    ours = predict(noisy_model, x, SIGMA, n=1000, alpha=ALPHA, device="cpu", seed=0)
    np.random.seed(0)
    smoothing = art_smoothing(noisy_model, SHAPE, 10, sigma=SIGMA, n0=1000, alpha=ALPHA)
    one_hot = smoothing.predict(x.numpy(), batch_size=1000)
    theirs = np.where(one_hot.any(1), one_hot.argmax(1), ABSTAIN)
    figures(
        "predict: abstentions",
        f"{np.mean(ours == ABSTAIN):.0%}",
        f"{np.mean(theirs == ABSTAIN):.0%}",
    )
    both = (ours != ABSTAIN) & (theirs != ABSTAIN)
    np.testing.assert_array_equal(ours[both], theirs[both])
    assert (ours != theirs).sum() <= 0.03 * POINTS

"""Randomized smoothing: closed form on fixed counts, abstentions, and real certificates."""

import numpy as np
import pytest
import torch
from scipy import stats

from scoring import ABSTAIN, certify, predict
from scoring.certify import certify_counts, predict_counts
from scoring.exceptions import InputRangeError, ParameterError


def test_certify_matches_the_closed_form_on_fixed_counts():
    counts0 = np.array([[95, 5, 0], [3, 97, 0], [40, 35, 25], [10, 90, 0]])
    counts = np.array([[9_900, 100, 0], [500, 9_500, 0], [5_200, 4_000, 800], [9_000, 1_000, 0]])
    sigma, alpha, n = 0.5, 0.001, 10_000
    pred, radius, p_lower = certify_counts(counts0, counts, sigma, alpha)
    for i, top in enumerate(counts0.argmax(1)):
        n_a = counts[i, top]
        expected_p = stats.beta.ppf(alpha, n_a, n - n_a + 1)
        assert p_lower[i] == pytest.approx(expected_p, rel=1e-12)
        if expected_p > 0.5:
            assert pred[i] == top
            assert radius[i] == pytest.approx(sigma * stats.norm.ppf(expected_p), rel=1e-12)
        else:
            assert pred[i] == ABSTAIN and radius[i] == 0.0
    assert pred.tolist() == [0, 1, 0, ABSTAIN]  # row 3: selection and estimation disagree


def test_certify_abstains_below_one_half_and_at_the_edge():
    # 5,100 of 10,000 votes: the lower bound falls below 1/2, so CERTIFY must abstain
    pred, radius, _ = certify_counts([[60, 40]], [[5_100, 4_900]], 0.25, 0.001)
    assert pred.tolist() == [ABSTAIN] and radius.tolist() == [0.0]
    pred, radius, p = certify_counts([[100, 0]], [[100, 0]], 0.25, 0.001)
    assert pred.tolist() == [0] and p[0] == pytest.approx(0.001 ** (1 / 100))
    assert radius[0] == pytest.approx(0.25 * stats.norm.ppf(0.001 ** (1 / 100)))


def test_predict_counts_matches_scipys_binomial_test():
    counts = np.array([[60, 40, 0], [65, 35, 0], [0, 30, 70], [50, 50, 0], [9, 1, 0]])
    got = predict_counts(counts, alpha=0.05)
    for row, g in zip(counts, got, strict=True):
        a, b = np.sort(row)[::-1][:2]
        p = stats.binomtest(int(a), int(a + b), 0.5).pvalue
        assert g == (int(np.argmax(row)) if p <= 0.05 else ABSTAIN)


def test_certified_radius_of_a_linear_classifier_approaches_its_true_distance():
    # For a linear classifier the smoothed classifier is the classifier itself and Cohen's
    # bound is tight: sigma * Phi^-1(p_A) equals the distance to the decision boundary.
    x = torch.tensor([[0.9, 0.1], [0.7, 0.5], [0.3, 0.6]])
    true = (x[:, 0] - x[:, 1]).abs() / 2**0.5
    r = certify(torch.nn.Identity(), x, sigma=0.25, n=20_000, device="cpu", seed=1)
    assert r.prediction.tolist() == [0, 0, 1]
    assert np.all(r.radius <= true.numpy() + 1e-9)
    assert np.all(r.radius >= 0.85 * true.numpy())
    assert r.forward_passes == 3 + 3 * (100 + 20_000)


def test_certify_a_noise_trained_digits_model(noisy_model, batch):
    x, y = batch[0][:60], batch[1][:60]
    r = certify(noisy_model, x, sigma=0.25, n0=50, n=1000, batch_size=4096, device="cpu")
    acc = r.certified_accuracy(y, [0.0, 0.25, 0.5, 1.0])
    assert acc == tuple(sorted(acc, reverse=True)) and acc[0] > 0.6
    assert acc[-1] <= float(np.mean(r.radius >= 1.0))
    max_radius = 0.25 * stats.norm.ppf(0.001 ** (1 / 1000))  # all 1,000 votes for one class
    assert r.radius.max() <= max_radius + 1e-12
    assert np.all((r.prediction == ABSTAIN) == (r.radius == 0))
    assert r.counts.sum(1).tolist() == [1000] * 60
    d = r.to_dict(y, radii=(0.0, 0.5))
    assert d["certified_accuracy"][0]["accuracy"] == acc[0] and d["n"] == 1000
    assert 0 <= d["abstain_rate"] <= 1


def test_predict_and_seeds(noisy_model, batch):
    x = batch[0][:20]
    a = predict(noisy_model, x, sigma=0.25, n=500, device="cpu", seed=3)
    b = predict(noisy_model, x, sigma=0.25, n=500, device="cpu", seed=3)
    assert np.array_equal(a, b) and set(a.tolist()) <= set(range(10)) | {ABSTAIN}
    with torch.no_grad():
        agree = a == noisy_model(x).argmax(1).numpy()
    assert agree[a != ABSTAIN].mean() > 0.8


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sigma": 0.0}, "'sigma'"),
        ({"alpha": 1.0}, "'alpha'"),
        ({"n": 0}, "'n' parameter"),
        ({"n0": 0}, "'n0'"),
        ({"batch_size": 0}, "'batch_size'"),
    ],
)
def test_bad_parameters(kw, message):
    args = {"sigma": 0.25, **kw}
    with pytest.raises(ParameterError, match=message):
        certify(torch.nn.Identity(), torch.tensor([[0.9, 0.1]]), device="cpu", **args)


def test_inputs_outside_the_range_are_refused():
    with pytest.raises(InputRangeError):
        certify(torch.nn.Identity(), torch.tensor([[9.0, 0.1]]), sigma=0.25, device="cpu")

"""Outlier detectors: the scores against their formulas, and calibration on large samples."""

import numpy as np
import pytest
import torch
from scipy import special

from detectors.exceptions import DataError, ParameterError
from detectors.outlier import EnergyScore, MahalanobisDetector, MaxSoftmax, OnModelLogits


def gaussian_logits(rng, n, shift=3.0):
    return rng.normal(size=(n, 5)) + shift * np.eye(5)[rng.integers(0, 5, n)]


@pytest.mark.parametrize(
    "make", [MaxSoftmax, EnergyScore, MahalanobisDetector], ids=["msp", "energy", "maha"]
)
def test_false_positive_rate_on_a_large_sample(make):
    """20,000 held-out rows, 4,000 to calibrate: the rate is the target to within 3 s.d."""
    rng = np.random.default_rng(0)
    det = make(fpr=0.05).fit(gaussian_logits(rng, 4000))
    rate = det.predict(gaussian_logits(rng, 20_000)).mean()
    sd = np.sqrt(0.05 * 0.95 * (1 / 20_000 + 1 / det.n_calibration_))
    assert abs(rate - 0.05) <= 3 * sd


def test_max_softmax_is_one_minus_the_top_probability_without_saturating():
    z = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0], [50.0, 0.0, 0.0], [60.0, 0.0, 0.0]])
    det = MaxSoftmax().fit(np.random.default_rng(0).normal(size=(100, 3)))
    scores = det.score(z)
    np.testing.assert_allclose(scores[:2], 1 - special.softmax(z[:2], axis=1).max(1))
    assert 0 < scores[3] < scores[2] < 1e-20, "1 - p would round to 0 here"


def test_max_softmax_on_probabilities():
    rng = np.random.default_rng(0)
    p = special.softmax(gaussian_logits(rng, 500), axis=1)
    det = MaxSoftmax(outputs="probabilities").fit(p)
    np.testing.assert_allclose(det.score(p[:5]), 1 - p[:5].max(1))
    with pytest.raises(DataError, match="to be probabilities"):
        det.score(p[:5] * 2)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_energy_is_minus_t_logsumexp(temperature):
    rng = np.random.default_rng(0)
    z = gaussian_logits(rng, 200)
    det = EnergyScore(temperature=temperature).fit(z)
    expected = -temperature * special.logsumexp(z[:7] / temperature, axis=1)
    np.testing.assert_allclose(det.score(z[:7]), expected)
    assert det.flag == "outlier:energy"


def test_mahalanobis_matches_the_tied_covariance_formula():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 900)
    x = rng.multivariate_normal([0, 0, 0], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 0.5]], 900)
    x += 3.0 * np.eye(3)[y]
    det = MahalanobisDetector(calibration_fraction=0.3, reg=0.0, seed=7).fit(x, y)
    fit = np.random.default_rng(7).permutation(900)[270:]
    means = np.stack([x[fit][y[fit] == c].mean(0) for c in range(3)])
    centred = x[fit] - means[y[fit]]
    precision = np.linalg.inv(centred.T @ centred / fit.size)
    new = rng.normal(size=(20, 3)) * 2
    d2 = np.einsum("ncd,de,nce->nc", new[:, None] - means, precision, new[:, None] - means)
    np.testing.assert_allclose(det.score(new), np.sqrt(d2.min(1)))
    np.testing.assert_allclose(det.whitening_ @ det.whitening_.T, precision, rtol=1e-8)
    assert det.n_calibration_ == 270 and det.classes_.tolist() == [0, 1, 2]


def test_mahalanobis_labels_default_to_the_predicted_class():
    z = gaussian_logits(np.random.default_rng(2), 600)
    det = MahalanobisDetector().fit(z)
    assert det.classes_.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match="expects y of 600 integer labels"):
        MahalanobisDetector().fit(z, np.zeros(600))


def test_mahalanobis_on_a_hidden_layer_flags_noise_images(data, model):
    det = MahalanobisDetector(model, layer="7", fpr=0.05).fit(data.x_ref, data.y_ref)
    noise = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    assert det.predict(noise).mean() >= 0.7
    assert det.predict(data.x_test).mean() <= 0.1
    assert det.means_.shape == (10, 64)


def test_outputs_detectors_take_no_model():
    with pytest.raises(TypeError):
        MaxSoftmax(model=torch.nn.Identity())


def test_on_model_logits_scores_what_the_output_detector_scores_on_the_logits(data, model):
    with torch.no_grad():
        ref_logits = model(torch.from_numpy(data.x_ref)).double().numpy()
        test_logits = model(torch.from_numpy(data.x_test)).double().numpy()
    for make in (MaxSoftmax, EnergyScore):
        wrapped = OnModelLogits(make(fpr=0.05), model, fpr=0.05).fit(data.x_ref)
        alone = make(fpr=0.05).fit(ref_logits)
        np.testing.assert_allclose(wrapped.score(data.x_test), alone.score(test_logits), rtol=1e-5)
        assert wrapped.threshold_ == pytest.approx(alone.threshold_, rel=1e-5)
        assert wrapped.flag == alone.flag


def test_on_model_logits_refuses_probabilities_and_non_output_detectors(model):
    with pytest.raises(ParameterError, match="outputs='logits'"):
        OnModelLogits(MaxSoftmax(outputs="probabilities"), model)
    with pytest.raises(ParameterError, match="detector"):
        OnModelLogits(MahalanobisDetector(), model)

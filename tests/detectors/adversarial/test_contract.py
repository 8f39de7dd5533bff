"""Every per-input detector through the same checks: the InputDetector contract.

Inputs are the digits images for detectors that run the model, and the model's logits on them
for those that read outputs. Calibration is checked on the 447 held-out digits: the number
of false positives must lie in the central 99% of Binomial(447, fpr).
"""

import json

import numpy as np
import pytest
import torch
from scipy import stats

from detectors.adversarial import (
    DetectorEnsemble,
    FeatureSqueezing,
    InputDetector,
    NoiseConsistency,
)
from detectors.exceptions import DataError, NotFittedError, ParameterError
from detectors.outlier import EnergyScore, MahalanobisDetector, MaxSoftmax, OnModelLogits

FPR = 0.05
DETECTORS = {
    "msp": (lambda m: MaxSoftmax(fpr=FPR), "logits"),
    "energy": (lambda m: EnergyScore(fpr=FPR), "logits"),
    "mahalanobis-features": (lambda m: MahalanobisDetector(fpr=FPR), "logits"),
    "mahalanobis-logits": (lambda m: MahalanobisDetector(m, fpr=FPR), "images"),
    "mahalanobis-layer": (lambda m: MahalanobisDetector(m, layer="7", fpr=FPR), "images"),
    "squeeze": (lambda m: FeatureSqueezing(m, fpr=FPR, squeezers=["bit-depth"], bits=3), "images"),
    "noise": (lambda m: NoiseConsistency(m, fpr=FPR, seed=1), "images"),
    "msp-on-model": (lambda m: OnModelLogits(MaxSoftmax(), m, fpr=FPR), "images"),
    "ensemble": (
        lambda m: DetectorEnsemble(
            [FeatureSqueezing(m, squeezers=["bit-depth"], bits=3), NoiseConsistency(m)], fpr=FPR
        ),
        "images",
    ),
}


@pytest.fixture(params=sorted(DETECTORS))
def case(request, data, model, logits):
    make, kind = DETECTORS[request.param]
    if kind == "logits":
        return make(model), logits["ref"], logits["test"]
    return make(model), data.x_ref, data.x_test


def test_fit_returns_self_and_scores_one_float_per_row(case):
    det, x_ref, x_test = case
    assert det.fit(x_ref) is det
    scores = det.score(x_test[:7])
    assert scores.shape == (7,) and scores.dtype == np.float64
    flags = det.predict(x_test[:7])
    assert flags.dtype == bool and flags.shape == (7,)
    assert np.isfinite(det.threshold_) and det.n_calibration_ > 0
    assert det.flag in {f"adversarial:{det.name}", f"outlier:{det.name}"}


def test_false_positive_rate_on_held_out_clean_data(case):
    det, x_ref, x_test = case
    false_positives = int(det.fit(x_ref).predict(x_test).sum())
    n = x_test.shape[0]
    low, high = stats.binom.ppf([0.005, 0.995], n, FPR)
    assert low <= false_positives <= high, f"{false_positives} of {n} flagged"


def test_calibration_holds_on_the_calibration_scores(case):
    """On the scores it was calibrated on: at most fpr, and at least fpr - 2/n (no ties)."""
    det, x_ref, _ = case
    det.fit(x_ref)
    if isinstance(det, DetectorEnsemble):
        return  # its calibration scores are ranks; checked in test_ensemble
    n = det.n_calibration_
    assert det.n_calibration_ <= x_ref.shape[0]
    if n == x_ref.shape[0] and not isinstance(det, NoiseConsistency):
        rate = det.predict(x_ref).mean()
        assert FPR - 2 / n <= rate <= FPR


def test_not_fitted(case):
    det, _, x_test = case
    with pytest.raises(NotFittedError, match="not fitted yet"):
        det.score(x_test[:2])
    with pytest.raises(NotFittedError):
        det.save("/nonexistent")


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda x: x[:, ..., :-1], "rows of x|features|classes"),
        (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "NaN"),
        (lambda x: np.full_like(x, np.inf), "NaN or infinite"),
        (lambda x: x[0], "shape|features|class"),
    ],
)
def test_bad_input_raises_data_error(case, bad, message):
    det, x_ref, x_test = case
    det.fit(x_ref)
    with pytest.raises(DataError, match=message):
        det.score(bad(x_test[:4].copy()))


def test_rows_may_come_flat(case):
    det, x_ref, x_test = case
    det.fit(x_ref)
    flat = x_test[:5].reshape(5, -1)
    if isinstance(det, NoiseConsistency | DetectorEnsemble):
        return  # random: two calls differ
    np.testing.assert_allclose(det.score(flat), det.score(x_test[:5]))


def test_save_load_round_trip_without_pickle(case, model, tmp_path):
    det, x_ref, x_test = case
    det.fit(x_ref)
    expected = det.score(x_test[:20])
    det.fit(x_ref)  # generators restart after fit and after load
    det.save(tmp_path / "det")
    files = {p.suffix for p in (tmp_path / "det").rglob("*") if p.is_file()}
    assert files <= {".json", ".npy", ".safetensors"}
    loaded = InputDetector.load(tmp_path / "det", model=model)
    assert type(loaded) is type(det) and repr(loaded) == repr(det)
    np.testing.assert_allclose(loaded.score(x_test[:20]), expected)
    assert loaded.threshold_ == det.threshold_
    config = json.loads((tmp_path / "det" / "config.json").read_text())
    assert config["class"] == type(det).__name__


def test_repr_names_parameters_not_the_model(case):
    det, _, _ = case
    text = repr(det)
    assert text.startswith(type(det).__name__ + "(") and "fpr=" in text
    assert "Conv2d" not in text


@pytest.mark.parametrize("fpr", [0.0, 1.0, 1.5, "0.05", True])
def test_fpr_is_validated(case, fpr, model):
    det, _, _ = case
    params = {k: v for k, v in det.get_params().items() if k != "fpr"}
    with pytest.raises(ParameterError, match=r"The 'fpr' parameter of \w+ must be a float in"):
        type(det)(**params, fpr=fpr)


def test_too_few_reference_rows_for_the_rate(case):
    det, x_ref, _ = case
    with pytest.raises(DataError, match="clean rows to calibrate"):
        det.fit(x_ref[:12])


def test_model_mode_is_restored(data, model):
    model.train()
    try:
        FeatureSqueezing(model).fit(data.x_ref[:100])
        assert model.training
    finally:
        model.eval()
    assert all(not p.requires_grad for p in model.parameters())


def test_loading_with_another_model_is_refused(data, model, tmp_path):
    FeatureSqueezing(model).fit(data.x_ref[:100]).save(tmp_path)
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(DataError, match="not the one it was fitted with"):
        InputDetector.load(tmp_path, model=other)
    with pytest.raises(DataError, match="saved without its 'model'"):
        InputDetector.load(tmp_path)

"""DetectorEnsemble: detection of C&W L2 examples, and the split of the false-positive budget."""

import numpy as np
import pytest

from detectors.adversarial import DetectorEnsemble, FeatureSqueezing, NoiseConsistency
from detectors.exceptions import ParameterError
from detectors.outlier import EnergyScore, MahalanobisDetector, MaxSoftmax, OnModelLogits


def squeeze(model):
    # On 8x8 digits a 2x2 or 3x3 median erases strokes (clean scores saturate); 3 bits keep
    # the digit and drop the fine detail C&W relies on.
    return FeatureSqueezing(model, squeezers=["bit-depth"], bits=3)


def test_ensemble_detects_cw_l2_far_above_its_false_positive_rate(data, model, cw_examples):
    assert cw_examples.shape[0] >= 100
    ens = DetectorEnsemble([squeeze(model), NoiseConsistency(model)], fpr=0.05).fit(data.x_ref)
    detection = ens.predict(cw_examples).mean()
    false_positives = ens.predict(data.x_test).mean()
    assert detection >= 0.9, f"C&W detection {detection:.3f}"
    assert false_positives <= 0.08


def test_the_models_own_confidence_completes_the_ensemble(data, model, cw_examples):
    """C&W stops just across the boundary: the model is unsure there, which the maximum
    softmax of its logits sees even where squeezing and noise miss."""
    members = [squeeze(model), NoiseConsistency(model), OnModelLogits(MaxSoftmax(), model)]
    ens = DetectorEnsemble(members, fpr=0.05).fit(data.x_ref)
    assert ens.predict(cw_examples).mean() >= 0.97
    assert ens.predict(data.x_test).mean() <= 0.08


def test_each_member_alone_detects_cw_l2(data, model, cw_examples):
    """Noise undoes a minimal perturbation almost always; squeezing two times in three."""
    assert NoiseConsistency(model).fit(data.x_ref).predict(cw_examples).mean() >= 0.9
    assert squeeze(model).fit(data.x_ref).predict(cw_examples).mean() >= 0.5


def test_flags_when_any_member_fires_at_its_ensemble_threshold(logits):
    members = [MaxSoftmax(), EnergyScore(), MahalanobisDetector()]
    ens = DetectorEnsemble(members, fpr=0.1).fit(logits["ref"])
    scores = np.stack([m.score(logits["test"]) for m in members], 1)
    any_fires = (scores > ens.member_thresholds_).any(1)
    np.testing.assert_array_equal(ens.predict(logits["test"]), any_fires)
    assert ens.n_calibration_ == 225, "Mahalanobis learns from the reference: split in half"


def test_budget_is_split_between_bonferroni_and_the_full_rate(logits):
    fpr = 0.1
    same = DetectorEnsemble([MaxSoftmax(), MaxSoftmax()], fpr=fpr).fit(logits["ref"])
    assert same.member_fpr_ == pytest.approx(fpr, abs=2 / 450), "identical members share it all"
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(4000, 6))
    independent = DetectorEnsemble(  # two members reading independent columns
        [MahalanobisDetector(), MaxSoftmax()], fpr=fpr, calibration_fraction=0.5
    ).fit(ref)
    assert fpr / 2 - 0.01 <= independent.member_fpr_ <= fpr / 2 + 0.015
    test = rng.normal(size=(20000, 6))
    assert independent.predict(test).mean() == pytest.approx(fpr, abs=0.015)


def test_members_that_learn_nothing_are_calibrated_on_the_whole_reference(data, model):
    ens = DetectorEnsemble([squeeze(model), NoiseConsistency(model)]).fit(data.x_ref)
    assert ens.n_calibration_ == data.x_ref.shape[0]
    tabular = FeatureSqueezing(model, squeezers=["quantile"], input_shape=(1, 8, 8))
    assert tabular._learns_from(data.x_ref)


@pytest.mark.parametrize("members", [[], [MaxSoftmax(), "msp"], "msp"])
def test_members_must_be_input_detectors(members):
    with pytest.raises(ParameterError, match="non-empty list of InputDetector"):
        DetectorEnsemble(members)

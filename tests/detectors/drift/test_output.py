import re

import numpy as np
import pytest
from scipy import special, stats

from detectors.drift import ClassDistributionDrift, ConfidenceDrift, EntropyDrift
from detectors.exceptions import DataError
from tests.detectors.drift.data import probabilities


def test_class_mix_is_a_chi_squared_test_of_predicted_classes():
    rng = np.random.default_rng(0)
    ref, x = probabilities(rng, 400, 3), probabilities(rng, 150, 3)
    r = ClassDistributionDrift().fit(ref).test(x)
    table = [np.bincount(ref.argmax(1), minlength=3), np.bincount(x.argmax(1), minlength=3)]
    assert r.p_value == pytest.approx(stats.chi2_contingency(table).pvalue, abs=1e-12)
    logits = np.log(ref) + 7.0  # logits, labels and probabilities agree
    by_logits = ClassDistributionDrift(outputs="logits").fit(logits).test(np.log(x))
    by_labels = ClassDistributionDrift(outputs="labels").fit(ref.argmax(1)).test(x.argmax(1))
    assert by_logits.p_value == by_labels.p_value == r.p_value


def test_a_class_never_predicted_in_the_reference_is_drift_not_an_error():
    ref = np.tile([[0.9, 0.1, 0.0]], (100, 1))
    x = np.vstack([np.tile([[0.9, 0.1, 0.0]], (80, 1)), np.tile([[0.1, 0.1, 0.8]], (20, 1))])
    assert ClassDistributionDrift().fit(ref).test(x).is_drift


def test_confidence_and_entropy_are_ks_tests_of_derived_columns():
    rng = np.random.default_rng(1)
    ref, x = rng.normal(size=(300, 5)) * 2, rng.normal(size=(100, 5))
    top = lambda z: special.softmax(z, 1).max(1)  # noqa: E731
    entropy = lambda z: special.entr(special.softmax(z, 1)).sum(1)  # noqa: E731
    for cls, derive in ((ConfidenceDrift, top), (EntropyDrift, entropy)):
        r = cls(outputs="logits").fit(ref).test(x)
        assert r.p_value == pytest.approx(stats.ks_2samp(derive(ref), derive(x)).pvalue, abs=1e-9)
        assert r.feature_p_values.shape == (1,) and r.is_drift


@pytest.mark.parametrize(
    ("cls", "x", "match"),
    [
        (ConfidenceDrift, [[0.5, 0.6], [0.5, 0.4]], "rows of x to be probabilities"),
        (ConfidenceDrift, [[1.5, -0.5], [0.5, 0.5]], "rows of x to be probabilities"),
        (EntropyDrift, [[1.0], [1.0]], "one column per class"),
        (ClassDistributionDrift, [[0.5, 0.5], [np.nan, 0.5]], "NaN or infinite"),
    ],
)
def test_outputs_are_checked(cls, x, match):
    det = cls().fit(
        probabilities(np.random.default_rng(2), 50, np.shape(x)[1] if np.shape(x)[1] > 1 else 2)
    )
    with pytest.raises(DataError, match=re.escape(match)):
        det.test(np.array(x))


def test_labels_must_be_one_column_of_non_negative_integers():
    with pytest.raises(DataError, match="one column of non-negative integers"):
        ClassDistributionDrift(outputs="labels").fit(np.array([0.0, 1.5, 2.0]))


def test_calibrated():
    rng = np.random.default_rng(3)
    lo, hi = stats.binom.interval(0.99, 500, 0.05)
    for det in (ClassDistributionDrift(), ConfidenceDrift(), EntropyDrift()):
        hits = sum(det.fit(probabilities(rng, 200, 4)).test(probabilities(rng, 100, 4)).is_drift
                   for _ in range(500))  # fmt: skip
        assert lo <= hits <= hi, type(det).__name__

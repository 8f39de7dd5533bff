import re

import numpy as np
import pytest
from scipy import stats

from detectors.drift import ChiSquareDrift
from detectors.exceptions import DataError


def _tables(x_ref, x, categories):
    return [
        np.array([[np.sum(x_ref[:, j] == c) for c in categories[j]],
                  [np.sum(x[:, j] == c) for c in categories[j]]])
        for j in range(x.shape[1])
    ]  # fmt: skip


@pytest.mark.parametrize("yates", [True, False])
@pytest.mark.parametrize("k", [2, 3, 7])
@pytest.mark.parametrize("seed", range(3))
def test_matches_chi2_contingency(seed, k, yates):
    rng = np.random.default_rng(seed)
    x_ref = rng.integers(0, k, size=(300, 4)).astype(float)
    x = rng.choice(k, size=(80, 4), p=rng.dirichlet(np.ones(k) * 5)).astype(float)
    r = ChiSquareDrift(yates=yates).fit(x_ref).test(x)
    for j, table in enumerate(_tables(x_ref, x, [np.unique(x_ref[:, j]) for j in range(4)])):
        expected = stats.chi2_contingency(table, correction=yates)
        assert r.feature_statistics[j] == pytest.approx(expected.statistic, abs=1e-9)
        assert r.feature_p_values[j] == pytest.approx(expected.pvalue, abs=1e-6)


def test_categories_are_any_finite_codes_and_may_be_absent_from_the_batch():
    x_ref = np.array([[-1.5], [2.0], [2.0], [1e6], [-1.5], [2.0]])
    x = np.array([[2.0], [2.0], [-1.5]])  # 1e6 absent from the batch: a zero count
    r = ChiSquareDrift().fit(x_ref).test(x)
    table = np.array([[2, 3, 1], [1, 2, 0]])
    expected = stats.chi2_contingency(table)
    assert r.feature_p_values[0] == pytest.approx(expected.pvalue, abs=1e-12)


def test_unseen_category_is_an_error_by_default():
    det = ChiSquareDrift().fit(np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 2.0]]))
    message = "x has value 7.0 in feature 1, a category never seen in the reference"
    with pytest.raises(DataError, match=re.escape(message)):
        det.test(np.array([[0.0, 7.0], [1.0, 1.0]]))


def test_unseen_values_counted_as_one_category():
    rng = np.random.default_rng(0)
    x_ref = rng.integers(0, 3, size=(300, 1)).astype(float)
    x = rng.integers(0, 3, size=(100, 1)).astype(float)
    x[:10] = [[5.0]] * 5 + [[9.0]] * 5  # two unseen values pooled into one column
    r = ChiSquareDrift(unseen="category").fit(x_ref).test(x)
    table = np.array([[np.sum(x_ref == c) for c in (0, 1, 2)] + [0],
                      [np.sum(x == c) for c in (0, 1, 2)] + [10]])  # fmt: skip
    assert r.feature_p_values[0] == pytest.approx(stats.chi2_contingency(table).pvalue, abs=1e-12)
    assert r.is_drift


def test_single_category_has_no_degree_of_freedom():
    r = ChiSquareDrift().fit(np.ones((50, 1))).test(np.ones((20, 1)))
    assert (r.feature_statistics[0], r.feature_p_values[0], r.is_drift) == (0.0, 1.0, False)


def test_calibrated():
    """500 undrifted windows at p_val 0.05: false positives within a 99% binomial interval."""
    rng = np.random.default_rng(11)
    p = [0.4, 0.3, 0.2, 0.1]
    lo, hi = stats.binom.interval(0.99, 500, 0.05)
    hits = sum(ChiSquareDrift().fit(rng.choice(4, size=(500, 1), p=p))
               .test(rng.choice(4, size=(200, 1), p=p)).is_drift for _ in range(500))  # fmt: skip
    assert lo <= hits <= hi


@pytest.mark.parametrize("seed", range(3))
def test_flags_a_category_mix_change(seed):
    rng = np.random.default_rng(seed)
    det = ChiSquareDrift().fit(rng.choice(4, size=(1000, 5), p=[0.4, 0.3, 0.2, 0.1]))
    x = rng.choice(4, size=(300, 5), p=[0.4, 0.3, 0.2, 0.1])
    x[:, 3] = rng.choice(4, size=300, p=[0.25, 0.25, 0.25, 0.25])
    r = det.test(x)
    assert r.is_drift and int(np.argmin(r.feature_p_values)) == 3

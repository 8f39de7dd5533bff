import re

import numpy as np
import pytest
from scipy import stats

from detectors.drift import ChiSquareDrift, CVMDrift, KSDrift, TabularDrift
from detectors.drift.corrections import benjamini_hochberg
from detectors.exceptions import DataError, ParameterError


def _table(rng, n, mix=(0.5, 0.3, 0.2), shift=0.0):
    return np.column_stack([rng.normal(shift, size=n), rng.choice(3, n, p=mix),
                            rng.exponential(size=n), rng.choice([10.0, 20.0], n)])  # fmt: skip


SCHEMA = ["numeric", "categorical", "numeric", "categorical"]


@pytest.mark.parametrize(("numeric_test", "numeric_cls"), [("ks", KSDrift), ("cvm", CVMDrift)])
def test_each_column_gets_the_test_of_its_kind(numeric_test, numeric_cls):
    rng = np.random.default_rng(0)
    x_ref, x = _table(rng, 500), _table(rng, 200, shift=0.2)
    r = TabularDrift(SCHEMA, numeric_test=numeric_test, correction="fdr").fit(x_ref).test(x)
    num = numeric_cls().fit(x_ref[:, [0, 2]]).test(x[:, [0, 2]])
    cat = ChiSquareDrift().fit(x_ref[:, [1, 3]]).test(x[:, [1, 3]])
    np.testing.assert_array_equal(r.feature_p_values[[0, 2]], num.feature_p_values)
    np.testing.assert_array_equal(r.feature_p_values[[1, 3]], cat.feature_p_values)
    np.testing.assert_array_equal(r.feature_statistics[[1, 3]], cat.feature_statistics)
    bh = benjamini_hochberg(r.feature_p_values, 0.05)
    assert (r.is_drift, r.p_value, r.threshold) == (bh.reject, bh.p_value, bh.threshold)
    assert r.statistic == r.feature_statistics[np.argmin(r.feature_p_values)]


def test_one_kind_only():
    rng = np.random.default_rng(1)
    x_ref = rng.integers(0, 4, size=(300, 2)).astype(float)
    x = rng.integers(0, 4, size=(100, 2)).astype(float)
    det = TabularDrift(["categorical", "categorical"]).fit(x_ref)
    assert det.numeric_ is None
    expected = ChiSquareDrift().fit(x_ref).test(x).to_dict()
    assert det.test(x).to_dict() == expected | {"detector": "tabular"}


def test_schema_must_name_every_column():
    with pytest.raises(
        DataError, match="x_ref has 4 features, but the schema of TabularDrift names 2"
    ):
        TabularDrift(["numeric", "numeric"]).fit(np.zeros((10, 4)))
    message = "The 'schema' parameter of TabularDrift must be a list of at least 1 item, each a str"
    with pytest.raises(ParameterError, match=re.escape(message)):
        TabularDrift(["numeric", "ordinal"])


def test_unseen_category():
    rng = np.random.default_rng(2)
    x_ref, x = _table(rng, 300), _table(rng, 100)
    x[0, 3] = 30.0
    with pytest.raises(DataError, match=re.escape("x has value 30.0 in feature 1, a category")):
        TabularDrift(SCHEMA).fit(x_ref).test(x)
    assert TabularDrift(SCHEMA, unseen="category").fit(x_ref).test(x).p_value > 0


def test_calibrated():
    rng = np.random.default_rng(14)
    _, hi = stats.binom.interval(0.99, 500, 0.05)
    hits = sum(TabularDrift(SCHEMA).fit(_table(rng, 300)).test(_table(rng, 100)).is_drift
               for _ in range(500))  # fmt: skip
    assert hits <= hi  # Bonferroni over 4 columns: at most p_val


@pytest.mark.parametrize(
    ("change", "column"),
    [(lambda rng, n: _table(rng, n, shift=0.5), 0),
     (lambda rng, n: _table(rng, n, mix=(0.3, 0.3, 0.4)), 1)],
    ids=["numeric-mean", "categorical-mix"],
)  # fmt: skip
def test_flags_the_changed_column(change, column):
    rng = np.random.default_rng(3)
    r = TabularDrift(SCHEMA).fit(_table(rng, 1000)).test(change(rng, 300))
    assert r.is_drift and int(np.argmin(r.feature_p_values)) == column

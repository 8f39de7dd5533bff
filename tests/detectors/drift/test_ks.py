import json
import re
import warnings

import numpy as np
import pytest
from scipy import stats

from detectors.drift import DriftDetector, DriftResult, KSDrift
from detectors.drift import ks as ks_module
from detectors.drift.corrections import benjamini_hochberg
from detectors.exceptions import DataError, NotFittedError, ParameterError


def _scipy(x_ref, x, alternative="two-sided", method="auto"):
    with warnings.catch_warnings():  # scipy warns where exact falls back to asymptotic
        warnings.simplefilter("ignore", RuntimeWarning)
        res = [
            stats.ks_2samp(x_ref[:, j], x[:, j], alternative=alternative, method=method)
            for j in range(x.shape[1])
        ]
    return np.array([r.statistic for r in res]), np.array([r.pvalue for r in res])


def _data(rng, n_ref, n, d, kind):
    if kind == "ties":  # integer-valued: ties inside each sample and across the two
        return (rng.integers(0, 6, (n_ref, d)).astype(float),
                rng.integers(0, 6, (n, d)).astype(float))  # fmt: skip
    shift = np.linspace(0.0, 0.6, d)  # from no drift to a clear one, so p spans (0, 1]
    return rng.normal(size=(n_ref, d)), rng.normal(size=(n, d)) + shift


def _assert_matches_scipy(x_ref, x, alternative="two-sided", method="auto"):
    det = KSDrift(alternative=alternative, method=method).fit(x_ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = det.test(x)
    statistic, p = _scipy(x_ref, x, alternative, method)
    np.testing.assert_allclose(r.feature_statistics, statistic, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.feature_p_values, p, rtol=0, atol=1e-6)
    return r


@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("method", ["auto", "exact", "asymp"])
@pytest.mark.parametrize(("n_ref", "n"), [(2, 2), (7, 3), (12, 12), (40, 25), (150, 150)])
def test_matches_ks_2samp_small(n_ref, n, method, alternative, kind):
    rng = np.random.default_rng(n_ref * 1000 + n)
    _assert_matches_scipy(*_data(rng, n_ref, n, 4, kind), alternative, method)


@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize(
    ("n_ref", "n", "alternative"),
    [
        (1000, 500, "two-sided"),  # exact, unequal sizes
        (400, 400, "greater"),  # exact, equal sizes
        (1000, 500, "less"),  # exact attempted, C(1500, 500) overflows: asymptotic
        (10_000, 200, "two-sided"),  # the last size "auto" computes exactly
        (10_001, 150, "two-sided"),  # one more row: asymptotic
        (10_001, 150, "greater"),
    ],
)
def test_matches_ks_2samp_large(n_ref, n, alternative, kind):
    rng = np.random.default_rng(n_ref + n)
    _assert_matches_scipy(*_data(rng, n_ref, n, 3, kind), alternative)


def test_exact_falls_back_with_a_warning_when_impossible():
    rng = np.random.default_rng(0)
    x_ref, x = rng.normal(size=(50_001, 2)), rng.normal(0.01, size=(49_999, 2))
    det = KSDrift(method="exact").fit(x_ref)
    with pytest.warns(RuntimeWarning, match="Exact KS p-values are not possible for 2"):
        r = det.test(x)
    with pytest.warns(RuntimeWarning, match="Exact ks_2samp calculation not possible"):
        expected = stats.ks_2samp(x_ref[:, 0], x[:, 0], method="exact")
    assert r.feature_p_values[0] == pytest.approx(expected.pvalue, abs=1e-6)


def test_auto_does_not_warn():
    rng = np.random.default_rng(0)
    det = KSDrift(alternative="less").fit(rng.normal(size=(1000, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det.test(rng.normal(size=(500, 2)))


def test_public_fallback_without_scipys_private_helper(monkeypatch):
    rng = np.random.default_rng(3)
    x_ref, x = _data(rng, 300, 120, 5, "continuous")
    expected = KSDrift().fit(x_ref).test(x).to_dict()
    monkeypatch.setattr(ks_module, "_attempt_exact_2kssamp", None)
    assert KSDrift().fit(x_ref).test(x).to_dict() == expected


def test_one_dimensional_input_is_one_feature():
    rng = np.random.default_rng(1)
    x_ref, x = rng.normal(size=300), rng.normal(0.3, size=100)
    r = KSDrift().fit(x_ref).test(x)
    expected = stats.ks_2samp(x_ref, x)
    assert r.feature_p_values.shape == (1,)
    assert r.p_value == pytest.approx(expected.pvalue, abs=1e-6)
    assert r.statistic == pytest.approx(expected.statistic, abs=1e-12)


def test_result_fields():
    rng = np.random.default_rng(2)
    x_ref, x = _data(rng, 500, 200, 4, "continuous")
    r = KSDrift(p_val=0.01).fit(x_ref).test(x)
    assert isinstance(r, DriftResult)
    assert (r.n_reference, r.n_test, r.detector, r.p_val) == (500, 200, "ks", 0.01)
    assert r.threshold == 0.01 / 4
    assert r.statistic == r.feature_statistics.max()
    assert r.p_value == min(1.0, 4 * r.feature_p_values.min())
    assert r.is_drift == (r.p_value <= r.p_val)
    assert not r.feature_p_values.flags.writeable
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()
    with pytest.raises(AttributeError):
        r.is_drift = False


def test_fdr_correction():
    rng = np.random.default_rng(4)
    x_ref, x = _data(rng, 500, 200, 6, "continuous")
    r = KSDrift(correction="fdr").fit(x_ref).test(x)
    bh = benjamini_hochberg(r.feature_p_values, 0.05)
    assert (r.is_drift, r.threshold, r.p_value) == (bh.reject, bh.threshold, bh.p_value)


def test_fit_sorts_the_reference_once_and_leaves_inputs_alone():
    rng = np.random.default_rng(5)
    x_ref, x = rng.normal(size=(100, 3)), rng.normal(size=(40, 3))
    x_ref_copy, x_copy = x_ref.copy(), x.copy()
    det = KSDrift()
    assert det.fit(x_ref) is det
    det.test(x)
    np.testing.assert_array_equal(det.x_ref_sorted_, np.sort(x_ref, axis=0))
    assert (det.n_features_in_, det.n_reference_) == (3, 100)
    np.testing.assert_array_equal(x_ref, x_ref_copy)
    np.testing.assert_array_equal(x, x_copy)


def _false_positive_rate(rng, n_ref, n, d, correction, windows=500):
    hits = 0
    for _ in range(windows):  # a fresh reference per window keeps the trials independent
        det = KSDrift(p_val=0.05, correction=correction).fit(rng.normal(size=(n_ref, d)))
        hits += det.test(rng.normal(size=(n, d))).is_drift
    return hits


def test_calibrated_on_one_feature():
    lo, hi = stats.binom.interval(0.99, 500, 0.05)
    hits = _false_positive_rate(np.random.default_rng(10), 1000, 200, 1, "bonferroni")
    assert lo <= hits <= hi


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_false_positive_rate_bounded_on_many_features(correction):
    _, hi = stats.binom.interval(0.99, 500, 0.05)
    assert _false_positive_rate(np.random.default_rng(11), 200, 100, 16, correction) <= hi


@pytest.mark.parametrize("seed", range(5))
def test_flags_half_sd_shift_in_one_of_32_features(seed):
    rng = np.random.default_rng(seed)
    det = KSDrift().fit(rng.normal(size=(1000, 32)))
    x = rng.normal(size=(200, 32))
    x[:, 7] += 0.5
    r = det.test(x)
    assert r.is_drift
    assert int(np.argmin(r.feature_p_values)) == 7


@pytest.fixture
def fitted():
    return KSDrift().fit(np.random.default_rng(6).normal(size=(50, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite(fitted, bad):
    x = np.zeros((10, 4))
    x[3, 2] = bad
    message = "x contains NaN or infinite values (first at row 3, feature 2)."
    with pytest.raises(DataError, match=re.escape(message)):
        fitted.test(x)
    with pytest.raises(DataError, match="x_ref contains NaN or infinite values"):
        KSDrift().fit(x)


def test_rejects_a_one_row_window(fitted):
    with pytest.raises(DataError, match="KSDrift needs at least 2 rows in x; got 1"):
        fitted.test(np.zeros((1, 4)))
    with pytest.raises(DataError, match="KSDrift needs at least 2 rows in x_ref; got 0"):
        KSDrift().fit(np.zeros((0, 4)))


def test_rejects_another_feature_count(fitted):
    with pytest.raises(DataError, match="x has 3 features, but KSDrift was fitted with 4"):
        fitted.test(np.zeros((10, 3)))
    with pytest.raises(DataError, match="x has 1 features, but KSDrift was fitted with 4"):
        fitted.test(np.zeros(10))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((2, 3, 4)), "x of shape \\(n_rows, n_features\\); got shape \\(2, 3, 4\\)"),
        (np.zeros((5, 0)), "at least 1 feature in x"),
        ([["a", "b"], ["c", "d"]], "numeric array for x"),
    ],
)
def test_rejects_bad_shapes_and_types(x, match):
    with pytest.raises(DataError, match=match):
        KSDrift().fit(np.zeros((10, 4))).test(x)


def test_test_before_fit():
    message = "KSDrift is not fitted yet: call fit(x_ref) first."
    with pytest.raises(NotFittedError, match=re.escape(message)):
        KSDrift().test(np.zeros((10, 2)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"p_val": 1.5}, "The 'p_val' parameter of KSDrift must be a float in (0, 1). "
                         "Got 1.5 instead."),
        ({"p_val": 0}, "The 'p_val' parameter of KSDrift must be a float in (0, 1). "
                       "Got 0 instead."),
        ({"p_val": "0.05"}, "must be a float in (0, 1). Got '0.05' instead."),
        ({"p_val": True}, "must be a float in (0, 1). Got True instead."),
        ({"p_val": float("nan")}, "must be a float in (0, 1). Got nan instead."),
        ({"correction": "holm"}, "The 'correction' parameter of KSDrift must be a str among "
                                 "{'bonferroni', 'fdr'}. Got 'holm' instead."),
        ({"alternative": "two_sided"}, "The 'alternative' parameter of KSDrift must be a str "
                                       "among {'two-sided', 'less', 'greater'}."),
        ({"method": "permutation"}, "The 'method' parameter of KSDrift must be a str among "
                                    "{'auto', 'exact', 'asymp'}. Got 'permutation' instead."),
    ],
)  # fmt: skip
def test_bad_parameters(params, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        KSDrift(**params)


def test_parameters_are_checked_again_at_fit():
    det = KSDrift()
    det.p_val = 2.0
    with pytest.raises(ParameterError, match="'p_val' parameter of KSDrift"):
        det.fit(np.zeros((10, 2)))


def test_repr_and_params():
    det = KSDrift(p_val=0.01, correction="fdr")
    assert det.get_params() == {
        "p_val": 0.01, "correction": "fdr", "alternative": "two-sided", "method": "auto",
    }  # fmt: skip
    assert repr(det) == (
        "KSDrift(p_val=0.01, correction='fdr', alternative='two-sided', method='auto')"
    )


@pytest.mark.parametrize("loader", [KSDrift.load, DriftDetector.load])
def test_save_load_round_trip(tmp_path, loader):
    rng = np.random.default_rng(7)
    x_ref, x = _data(rng, 300, 100, 5, "continuous")
    det = KSDrift(p_val=0.01, correction="fdr", alternative="greater").fit(x_ref)
    assert det.save(tmp_path / "ks") == tmp_path / "ks"
    assert sorted(p.name for p in (tmp_path / "ks").iterdir()) == [
        "config.json", "x_ref_sorted.npy",
    ]  # fmt: skip
    config = json.loads((tmp_path / "ks" / "config.json").read_text())
    assert config["class"] == "KSDrift"
    assert config["format_version"] == 1
    assert config["params"] == det.get_params()
    np.load(tmp_path / "ks" / "x_ref_sorted.npy", allow_pickle=False)
    loaded = loader(tmp_path / "ks")
    assert type(loaded) is KSDrift
    assert repr(loaded) == repr(det)
    np.testing.assert_array_equal(loaded.x_ref_sorted_, det.x_ref_sorted_)
    assert (loaded.n_features_in_, loaded.n_reference_) == (5, 300)
    assert loaded.test(x).to_dict() == det.test(x).to_dict()


def test_save_before_fit(tmp_path):
    with pytest.raises(NotFittedError, match="KSDrift is not fitted yet"):
        KSDrift().save(tmp_path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"format_version": 99}, "has format version 99; this version of robustwatch reads 1"),
        ({"class": "Unknown"}, "holds a Unknown, which is not a KSDrift"),
        ({"arrays": ["../evil_"]}, "names an invalid attribute '../evil_'"),
        ({"params": {"p_val": 7.0}}, "The 'p_val' parameter of KSDrift"),
    ],
)
def test_load_rejects_bad_config(tmp_path, edit, match):
    KSDrift().fit(np.zeros((10, 2)) + np.arange(10)[:, None]).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises((DataError, ParameterError), match=match):
        KSDrift.load(tmp_path)

"""Every batch drift detector through the same checks: the DriftDetector contract."""

import json
import re

import numpy as np
import pytest

from detectors.drift import (
    ChiSquareDrift,
    ClassDistributionDrift,
    ConfidenceDrift,
    CVMDrift,
    DriftDetector,
    DriftResult,
    EntropyDrift,
    JensenShannonDrift,
    KSDrift,
    LSDDDrift,
    MMDDrift,
    PSIDrift,
    RandomProjection,
    TabularDrift,
    UntrainedEncoder,
    WassersteinDrift,
)
from detectors.exceptions import DataError, NotFittedError, ParameterError
from tests.detectors.drift.data import categorical, mixed, numeric, probabilities

DETECTORS = {
    "ks": (lambda: KSDrift(), numeric),
    "cvm": (lambda: CVMDrift(correction="fdr"), numeric),
    "chisquare": (lambda: ChiSquareDrift(unseen="category"), categorical),
    "mmd": (lambda: MMDDrift(n_permutations=30, device="cpu", seed=3), numeric),
    "mmd-projected": (
        lambda: MMDDrift(n_permutations=30, preprocess=RandomProjection(2, seed=1), device="cpu"),
        numeric,
    ),
    "lsdd": (lambda: LSDDDrift(n_permutations=30, device="cpu"), numeric),
    "lsdd-encoded": (
        lambda: LSDDDrift(
            n_permutations=30, preprocess=UntrainedEncoder(3, hidden=8), device="cpu"
        ),
        numeric,
    ),
    "tabular": (lambda: TabularDrift(["numeric", "categorical"] * 2, unseen="category"), mixed),
    "psi": (lambda: PSIDrift(n_bins=5), numeric),
    "jensen-shannon": (lambda: JensenShannonDrift(), numeric),
    "wasserstein": (lambda: WassersteinDrift(), numeric),
    "output-class": (lambda: ClassDistributionDrift(), probabilities),
    "output-confidence": (lambda: ConfidenceDrift(), probabilities),
    "output-entropy": (lambda: EntropyDrift(), probabilities),
}


@pytest.fixture(params=sorted(DETECTORS))
def case(request):
    make, data = DETECTORS[request.param]
    rng = np.random.default_rng(0)
    return make, data(rng, 120, 4), data(rng, 60, 4), data(rng, 60, 3)


def test_fit_returns_self_and_learns(case):
    make, x_ref, _, _ = case
    det = make()
    assert det.fit(x_ref) is det
    assert (det.n_features_in_, det.n_reference_) == (4, 120)


def test_result_is_a_frozen_drift_result(case):
    make, x_ref, x, _ = case
    det = make().fit(x_ref)
    r = det.test(x)
    assert isinstance(r, DriftResult)
    assert r.detector == det.name
    assert (r.n_reference, r.n_test) == (120, 60)
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()
    if r.p_value is not None:
        assert 0 < r.p_value <= 1 and r.is_drift == (r.p_value <= r.p_val)
    with pytest.raises(AttributeError):
        r.is_drift = True


def test_answers_are_deterministic_and_leave_inputs_alone(case):
    make, x_ref, x, _ = case
    ref_copy, x_copy = x_ref.copy(), x.copy()
    det = make().fit(x_ref)
    assert det.test(x).to_dict() == det.test(x).to_dict() == make().fit(x_ref).test(x).to_dict()
    np.testing.assert_array_equal(x_ref, ref_copy)
    np.testing.assert_array_equal(x, x_copy)


def test_not_fitted(case):
    make, _, x, _ = case
    name = type(make()).__name__
    with pytest.raises(NotFittedError, match=re.escape(f"{name} is not fitted yet")):
        make().test(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rejects_non_finite(case, bad):
    make, x_ref, x, _ = case
    x = x.copy()
    x[5, 1] = bad
    with pytest.raises(DataError, match=re.escape("(first at row 5, feature 1)")):
        make().fit(x_ref).test(x)
    with pytest.raises(DataError, match="x_ref contains NaN or infinite values"):
        make().fit(x)


def test_rejects_another_feature_count(case):
    make, x_ref, _, x3 = case
    det = make().fit(x_ref)
    with pytest.raises(DataError, match=f"x has 3 features, but {type(det).__name__} was fitted"):
        det.test(x3)


def test_rejects_a_window_too_small(case):
    make, x_ref, x, _ = case
    with pytest.raises(DataError, match="needs at least 2 rows in x; got 1"):
        make().fit(x_ref).test(x[:1])


def test_save_load_round_trip(case, tmp_path):
    make, x_ref, x, _ = case
    det = make().fit(x_ref)
    det.save(tmp_path / "det")
    files = {p.suffix for p in (tmp_path / "det").rglob("*") if p.is_file()}
    assert files <= {".json", ".npy", ".safetensors"}
    for loader in (type(det).load, DriftDetector.load):
        loaded = loader(tmp_path / "det")
        assert type(loaded) is type(det)
        assert repr(loaded) == repr(det)
        assert loaded.test(x).to_dict() == det.test(x).to_dict()


def test_load_checks_the_class(case, tmp_path):
    make, x_ref, _, _ = case
    make().fit(x_ref).save(tmp_path)
    other = KSDrift if not isinstance(make(), KSDrift) else CVMDrift
    with pytest.raises(DataError, match=f"which is not a {other.__name__}"):
        other.load(tmp_path)


#: The detectors that take a p-value threshold (the distances take a distance threshold).
TESTS_WITH_P_VALUES = sorted(
    k for k in DETECTORS if k not in {"psi", "jensen-shannon", "wasserstein"}
)


@pytest.mark.parametrize("key", TESTS_WITH_P_VALUES)
def test_bad_p_val_is_refused_at_construction(key):
    det = DETECTORS[key][0]()
    assert "p_val" in det.get_params()
    name = type(det).__name__
    message = f"The 'p_val' parameter of {name} must be a float in (0, 1). Got 1.5"
    with pytest.raises(ParameterError, match=re.escape(message)):
        type(det)(**(det.get_params() | {"p_val": 1.5}))

"""Every online drift detector through the same checks: the OnlineDriftDetector contract."""

import json
import re

import numpy as np
import pytest

from detectors.drift import (
    CVMDriftOnline,
    MMDDriftOnline,
    OnlineDriftDetector,
    OnlineDriftResult,
    RandomProjection,
)
from detectors.exceptions import DataError, NotFittedError, ParameterError

DETECTORS = {
    "mmd-online": lambda: MMDDriftOnline(ert=50, window_size=6, n_bootstraps=500, seed=1),
    "mmd-online-projected": lambda: MMDDriftOnline(
        ert=50, window_size=6, n_bootstraps=500, preprocess=RandomProjection(2, seed=0)
    ),
    "cvm-online": lambda: CVMDriftOnline(ert=50, window_sizes=(4, 7), n_bootstraps=2000, seed=1),
}


@pytest.fixture(params=sorted(DETECTORS))
def make(request):
    return DETECTORS[request.param]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(150, 3)), rng.normal(size=(40, 3))


def test_fit_returns_self(make, data):
    det = make()
    assert det.fit(data[0]) is det
    assert (det.n_features_in_, det.n_reference_, det.step) == (3, 150, 0)


def test_one_event_a_micro_batch_or_chunks_give_the_same_steps(make, data):
    x_ref, x = data
    det = make().fit(x_ref)
    whole = det.update(x)
    det.reset()
    single = [det.update(row) for row in x]
    det.reset()
    chunks = [det.update(x[i : i + 9]) for i in range(0, 40, 9)]
    for got in (np.array([r.statistic for r in single]),
                np.concatenate([r.step_statistics for r in chunks])):  # fmt: skip
        np.testing.assert_allclose(got, whole.step_statistics, rtol=0, atol=1e-7)  # float32 sums
    assert [r.step for r in single] == list(range(1, 41))
    assert whole.step == chunks[-1].step == 40


def test_window_fills_before_any_statistic(make, data):
    x_ref, x = data
    det = make().fit(x_ref)
    r = det.update(x[: det.warmup])
    assert np.isnan(r.step_statistics).all() and not r.is_drift and r.drift_step is None
    assert r.to_dict()["statistic"] is None and r.to_dict()["step_thresholds"][0] is None
    r = det.update(x[det.warmup])
    assert np.isfinite(r.statistic) and r.threshold == det.thresholds_[0]


def test_result_fields(make, data):
    x_ref, x = data
    det = make().fit(x_ref)
    r = det.update(x + 4.0)
    assert isinstance(r, OnlineDriftResult) and r.detector == det.name and r.ert == 50.0
    assert r.is_drift and r.drift_step == int(np.argmax(r.step_statistics > r.step_thresholds)) + 1
    assert r.statistic == r.step_statistics[-1] and r.threshold == r.step_thresholds[-1]
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()
    assert not r.step_statistics.flags.writeable
    later = det.update(x[:3] + 4.0)
    assert (later.step, later.drift_step) == (43, 41)  # steps count on until reset
    np.testing.assert_array_equal(later.step_thresholds, det.thresholds_[-1])


def test_reset_replays_a_stream(make, data):
    x_ref, x = data
    det = make().fit(x_ref)
    first = det.update(x).to_dict()
    det.update(x[::-1])
    det.reset()
    assert det.step == 0
    assert det.update(x).to_dict() == first


def test_save_load_round_trip(make, data, tmp_path):
    x_ref, x = data
    det = make().fit(x_ref)
    det.update(x[:10])  # the stream state is not saved: a loaded detector starts afresh
    det.save(tmp_path / "online")
    assert {p.suffix for p in (tmp_path / "online").rglob("*") if p.is_file()} <= {".json", ".npy"}
    loaded = OnlineDriftDetector.load(tmp_path / "online")
    assert type(loaded) is type(det) and repr(loaded) == repr(det) and loaded.step == 0
    np.testing.assert_array_equal(loaded.thresholds_, det.thresholds_)
    det.reset()
    assert loaded.update(x).to_dict() == det.update(x).to_dict()


def test_bad_input(make, data):
    x_ref, x = data
    name = type(make()).__name__
    with pytest.raises(NotFittedError, match=f"{name} is not fitted yet"):
        make().update(x[0])
    det = make().fit(x_ref)
    bad = x[:5].copy()
    bad[2, 1] = np.nan
    message = "x contains NaN or infinite values (first at row 2, feature 1)."
    with pytest.raises(DataError, match=re.escape(message)):
        det.update(bad)
    with pytest.raises(DataError, match=f"x has 2 features, but {name} was fitted with 3"):
        det.update(x[:5, :2])
    with pytest.raises(DataError, match="numeric array"):
        det.update(["a", "b", "c"])
    assert det.step == 0  # nothing was consumed

    with pytest.raises(DataError, match="reference rows; got 5"):
        make().fit(x_ref[:5])


def test_finite_but_enormous_values(make, data):
    x_ref, x = data
    det = make().fit(x_ref)
    huge = np.full((2, 3), 1e308)  # finite, though its sum overflows
    with np.errstate(over="ignore", invalid="ignore"):
        if not isinstance(det, MMDDriftOnline):
            assert det.update(huge).step == 2
            return
        with pytest.raises(DataError, match="too far from the reference for the float32 kernels"):
            det.update(huge)  # refused before any state changes
    assert det.step == 0 and det.update(x).to_dict() == make().fit(x_ref).update(x).to_dict()


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (MMDDriftOnline, {"ert": 1},
         "The 'ert' parameter of MMDDriftOnline must be a float in (1, inf)"),
        (MMDDriftOnline, {"window_size": 1},
         "The 'window_size' parameter of MMDDriftOnline must be an int in [2, inf)"),
        (CVMDriftOnline, {"window_sizes": []},
         "The 'window_sizes' parameter of CVMDriftOnline must be a list of at least 1 item"),
        (CVMDriftOnline, {"window_sizes": [10, 1]},
         "each an int in [2, inf). Got (10, 1) instead."),
    ],
)  # fmt: skip
def test_bad_parameters(cls, params, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        cls(**params)

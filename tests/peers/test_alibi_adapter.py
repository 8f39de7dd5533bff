"""Detectors saved by alibi-detect, loaded by robustwatch's adapter, answer as alibi-detect does.

Each detector is built and saved with ``alibi_detect.saving.save_detector``, then loaded twice
from the same directory: once by :func:`detectors.drift.alibi.load_alibi`, once by
alibi-detect's ``load_detector``. Both copies see the same batches or events (and, where
alibi-detect draws random numbers, the same torch seed), and our typed results must carry
exactly alibi-detect's ``predict`` output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from detectors.drift.alibi import AlibiDrift, AlibiDriftOnline, load_alibi
from detectors.drift.corrections import CORRECTIONS
from detectors.exceptions import DataError

alibi_cd = pytest.importorskip("alibi_detect.cd")
saving = pytest.importorskip("alibi_detect.saving")
logging.getLogger("alibi_detect").setLevel(logging.ERROR)  # "directory is now created", etc.

D = 3


def continuous(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """A float32 reference of 300 x 3 and batches of 100: no drift, a shift in feature 1."""
    rng = np.random.default_rng(seed)
    x_ref = rng.normal(size=(300, D)).astype(np.float32)
    clean = rng.normal(size=(100, D)).astype(np.float32)
    shifted = (rng.normal(size=(100, D)) + np.array([0.0, 0.8, 0.0])).astype(np.float32)
    return x_ref, [clean, shifted]


def categorical(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    x_ref = rng.integers(0, 4, size=(300, 2)).astype(np.float32)
    clean = rng.integers(0, 4, size=(100, 2)).astype(np.float32)
    mixed = np.stack([rng.choice(4, 100, p=[0.7, 0.1, 0.1, 0.1]), rng.integers(0, 4, 100)], 1)
    return x_ref, [clean, mixed.astype(np.float32)]


def save(detector, tmp_path: Path) -> Path:
    path = tmp_path / type(detector).__name__
    saving.save_detector(detector, path)
    return path


def both(path: Path, seed: int = 0):
    """Our adapter and alibi-detect's own detector, loaded from ``path`` with the same seeds
    (alibi-detect's online detectors draw their calibration again when loaded, with torch's
    or numpy's global generator)."""
    torch.manual_seed(seed), np.random.seed(seed)  # the generators alibi-detect draws from
    ours = load_alibi(path)
    torch.manual_seed(seed), np.random.seed(seed)
    return ours, saving.load_detector(path)


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
@pytest.mark.parametrize("kind", ["KSDrift", "CVMDrift"])
def test_feature_wise_tests_carry_alibi_detects_answer(kind, correction, tmp_path) -> None:
    x_ref, batches = continuous()
    ours, theirs = both(save(getattr(alibi_cd, kind)(x_ref, correction=correction), tmp_path))
    assert isinstance(ours, AlibiDrift) and ours.name == f"alibi-{kind[:-5].lower()}"
    assert (ours.n_features_in_, ours.n_reference_, ours.p_val) == (D, 300, 0.05)
    found = []
    for x in batches:
        r, data = ours.test(x.astype(np.float64)), theirs.predict(x)["data"]
        np.testing.assert_array_equal(r.feature_p_values, data["p_val"])
        np.testing.assert_array_equal(r.feature_statistics, data["distance"])
        assert r.is_drift == bool(data["is_drift"]) and r.p_val == 0.05
        assert r.threshold == np.min(data["threshold"])  # fdr: its cut-off, or the first one
        assert r.p_value == CORRECTIONS[correction](data["p_val"], 0.05).p_value
        assert r.statistic == np.max(data["distance"]) and (r.n_reference, r.n_test) == (300, 100)
        found.append(r.is_drift)
    assert found == [False, True]


def test_chi_squared_carries_alibi_detects_answer(tmp_path) -> None:
    x_ref, batches = categorical()
    ours, theirs = both(save(alibi_cd.ChiSquareDrift(x_ref), tmp_path))
    found = []
    for x in batches:
        r, data = ours.test(x.astype(np.float64)), theirs.predict(x)["data"]
        np.testing.assert_array_equal(r.feature_p_values, data["p_val"])
        np.testing.assert_array_equal(r.feature_statistics, data["distance"])
        assert (r.is_drift, r.threshold) == (bool(data["is_drift"]), data["threshold"])
        found.append(r.is_drift)
    assert found == [False, True] and ours.name == "alibi-chisquare"


@pytest.mark.parametrize("kind", ["MMDDrift", "LSDDDrift"])
def test_kernel_tests_carry_alibi_detects_answer(kind, tmp_path) -> None:
    x_ref, batches = continuous()
    det = getattr(alibi_cd, kind)(x_ref, backend="pytorch", n_permutations=100)
    ours, theirs = both(save(det, tmp_path))
    found = []
    for i, x in enumerate(batches):
        torch.manual_seed(i)  # the same permutations on both sides
        r = ours.test(x.astype(np.float64))
        torch.manual_seed(i)
        data = theirs.predict(x)["data"]
        assert (r.p_value, r.statistic, r.threshold) == (
            data["p_val"], data["distance"], data["threshold"])  # fmt: skip
        assert r.is_drift == bool(data["is_drift"]) and r.feature_p_values is None
        found.append(r.is_drift)
    assert found == [False, True]


@pytest.mark.parametrize("kind", ["MMDDriftOnline", "LSDDDriftOnline"])
def test_online_kernel_detectors_step_as_alibi_detect_does(kind, tmp_path) -> None:
    x_ref, _ = continuous()
    torch.manual_seed(0)
    det = getattr(alibi_cd, kind)(x_ref, ert=50, window_size=10, backend="pytorch",
                                  n_bootstraps=300, verbose=False)  # fmt: skip
    ours, theirs = both(save(det, tmp_path))
    assert isinstance(ours, AlibiDriftOnline) and (ours.ert, ours.warmup, ours.step) == (50, 0, 0)
    rng = np.random.default_rng(1)
    stream = np.concatenate([rng.normal(size=(30, D)), rng.normal(size=(30, D)) + 1.5])
    steps = [ours.update(e) for e in stream[:40]]  # one event at a time
    batch = ours.update(stream[40:])  # then a micro-batch of 20
    theirs_ = [theirs.predict(e.astype(np.float32))["data"] for e in stream]
    stats = [r.statistic for r in steps] + batch.step_statistics.tolist()
    thresholds = [r.threshold for r in steps] + batch.step_thresholds.tolist()
    alarms = [r.is_drift for r in steps]
    np.testing.assert_array_equal(stats, [d["test_stat"] for d in theirs_])
    np.testing.assert_array_equal(thresholds, [d["threshold"] for d in theirs_])
    assert alarms == [bool(d["is_drift"]) for d in theirs_[:40]]
    in_batch = [t for t in range(41, 61) if theirs_[t - 1]["is_drift"]]
    assert in_batch and batch.is_drift and batch.drift_step == in_batch[0]  # after the shift
    assert [r.step for r in steps] == list(range(1, 41)) and batch.step == 60 == ours.step
    ours.reset()
    assert ours.step == 0


def test_online_cvm_fills_its_window_first(tmp_path) -> None:
    x_ref, _ = continuous()
    det = alibi_cd.CVMDriftOnline(x_ref, ert=50, window_sizes=[5, 10], n_bootstraps=500,
                                  verbose=False)  # fmt: skip
    ours, theirs = both(save(det, tmp_path))
    stream = np.random.default_rng(2).normal(size=(20, D))
    r = ours.update(stream)
    theirs_ = [theirs.predict(e.astype(np.float32))["data"] for e in stream]
    assert ours.warmup == 4 and np.isnan(r.step_statistics[:4]).all()
    full = [np.nanmax(d["test_stat"]) for d in theirs_[4:]]
    np.testing.assert_array_equal(r.step_statistics[4:], full)
    np.testing.assert_array_equal(r.step_thresholds[4:], [d["threshold"][0] for d in theirs_[4:]])
    assert r.is_drift == any(d["is_drift"] for d in theirs_)


def test_bad_input_and_unsupported_detectors(tmp_path) -> None:
    x_ref, _ = continuous()
    ours = load_alibi(save(alibi_cd.KSDrift(x_ref), tmp_path))
    with pytest.raises(DataError, match=r"x has 4 values per row, but the alibi-detect KSDrift"):
        ours.test(np.zeros((10, 4)))
    with pytest.raises(DataError, match="NaN"):
        ours.test(np.full((10, D), np.nan))
    with pytest.raises(DataError, match="keeps the reference alibi-detect saved"):
        ours.fit(x_ref)
    assert ours.fit() is ours
    spot = tmp_path / "spot"
    spot.mkdir()
    (spot / "config.toml").write_text('name = "ClassifierDrift"\n')
    with pytest.raises(DataError, match="ClassifierDrift, which robustwatch does not map"):
        load_alibi(spot)
    with pytest.raises(DataError, match=r"no config\.toml"):
        load_alibi(tmp_path / "nowhere")


def test_the_agent_config_takes_and_builds_it(tmp_path) -> None:
    config = pytest.importorskip("agent.config")
    x_ref, batches = continuous()
    path = save(alibi_cd.KSDrift(x_ref), tmp_path)
    data = {
        "kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
        "model": {"name": "m"},
        "detectors": {"drift": {"type": "alibi", "name": "team-ks", "path": str(path)}},
    }
    spec = config.config_from_dict(data, env={}).detectors.drift
    assert (spec.type, spec.name, spec.path, spec.needs_reference) == ("alibi", "team-ks", path,
                                                                      False)  # fmt: skip
    pytest.importorskip("prometheus_client")  # agent.drift needs it; the peers env may not
    from agent.drift import FACTORIES

    det = FACTORIES["alibi"](spec)
    theirs = saving.load_detector(path)
    assert det.test(batches[1]).is_drift == bool(theirs.predict(batches[1])["data"]["is_drift"])

"""Type ``alibi`` in ``detectors.drift``: built from a saved directory, run like the others.

alibi-detect never sits in the main environment (it pins numpy < 2), so these tests put a
stand-in for ``alibi_detect.saving`` in ``sys.modules``: its ``load_detector`` returns small
detectors named and answering as alibi-detect's do. tests/peers/test_alibi_adapter.py runs
the adapter against the real alibi-detect.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from agent.config import config_from_dict
from agent.drift import build_drift_detectors
from agent.events import InferenceEvent
from agent.exceptions import StartupError
from agent.metrics import AgentMetrics
from agent.pipeline import Pipeline
from detectors.drift import KSDrift as OurKS


class KSDrift:
    """alibi-detect's KSDrift as the adapter sees it: attributes and ``predict``'s dict."""

    def __init__(self, x_ref: np.ndarray) -> None:
        self.x_ref, self.input_shape = x_ref.astype(np.float32), x_ref.shape[1:]
        self.p_val, self.correction = 0.05, "bonferroni"
        self._ks = OurKS(p_val=0.05).fit(x_ref)

    def predict(self, x: np.ndarray) -> dict[str, Any]:
        assert x.dtype == np.float32  # cast to the reference's dtype
        r = self._ks.test(x)
        data = {"is_drift": int(r.is_drift), "p_val": r.feature_p_values,
                "distance": r.feature_statistics, "threshold": r.threshold}  # fmt: skip
        return {"meta": {}, "data": data}


class MMDDriftOnline:
    """An online stand-in: the statistic is the event's mean, the threshold 1."""

    def __init__(self, x_ref: np.ndarray) -> None:
        self.x_ref, self.input_shape, self.ert, self.t = x_ref, x_ref.shape[1:], 100.0, 0

    def predict(self, x_t: np.ndarray, return_test_stat: bool = True) -> dict[str, Any]:
        self.t += 1
        stat = float(x_t.mean())
        data = {"is_drift": int(stat > 1.0), "time": self.t, "test_stat": stat, "threshold": 1.0}
        return {"meta": {}, "data": data}


def saved(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    path.mkdir()
    (path / "config.toml").write_text(f'name = "{kind}"\n')
    return path


@pytest.fixture
def alibi(monkeypatch) -> None:
    """alibi-detect's loader, standing in: a saved directory's kind picks the detector."""
    x_ref = np.random.default_rng(0).normal(size=(500, 3))
    kinds = {"KSDrift": KSDrift, "MMDDriftOnline": MMDDriftOnline}
    saving = types.ModuleType("alibi_detect.saving")
    saving.load_detector = lambda config: kinds[config.parent.name](x_ref)
    package = types.ModuleType("alibi_detect")
    package.saving = saving
    monkeypatch.setitem(sys.modules, "alibi_detect", package)
    monkeypatch.setitem(sys.modules, "alibi_detect.saving", saving)


@pytest.fixture
def reference_file(tmp_path) -> Path:
    path = tmp_path / "reference.npy"
    np.save(path, np.random.default_rng(1).normal(size=(500, 5)))
    return path


def build(drift: Any, reference: dict[str, Any] | None = None):
    data = {
        "kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
        "model": {"name": "m"},
        "detectors": {"drift": drift},
    }
    if reference is not None:
        data["reference"] = reference
    metrics = AgentMetrics(CollectorRegistry(), "m", None)
    feeds, n_features = build_drift_detectors(config_from_dict(data, env={}), metrics)
    return Pipeline("m", None, feeds), n_features


def events(x: np.ndarray) -> list[InferenceEvent]:
    return [InferenceEvent(f"e{i}", "m", None, 0.0, row, None, None, None, {})
            for i, row in enumerate(x)]  # fmt: skip


def test_a_batch_alibi_detector_runs_on_its_window_of_the_chosen_columns(
    alibi, tmp_path, reference_file
) -> None:
    spec = {"type": "alibi", "name": "team-ks", "path": str(saved(tmp_path, "KSDrift")),
            "features": [0, 2, 4], "window": 50}  # fmt: skip
    pipeline, n_features = build([spec], {"path": str(reference_file)})
    assert n_features == 5
    rng = np.random.default_rng(2)
    clean = pipeline.process(events(rng.normal(size=(100, 5))))
    assert all("drift:team-ks" in r.scores for r in clean)  # two windows of 50, tested
    assert not any("drift:team-ks" in r.flags for r in clean)
    shifted = rng.normal(size=(100, 5)) + np.array([0.0, 0.0, 1.5, 0.0, 0.0])
    assert "drift:team-ks" in pipeline.process(events(shifted))[-1].flags


def test_an_online_alibi_detector_needs_no_reference_and_takes_no_window(alibi, tmp_path) -> None:
    path = str(saved(tmp_path, "MMDDriftOnline"))
    pipeline, n_features = build({"type": "alibi", "name": "team-mmd", "path": path})
    assert n_features is None  # the single mapping needs no reference section
    x = np.zeros((4, 3))
    x[2] = 2.0
    results = pipeline.process(events(x))
    assert [list(r.flags) for r in results] == [[], [], ["drift:team-mmd"], []]
    with pytest.raises(StartupError, match=r"detectors\.drift\.window: .* online MMDDriftOnline"):
        build({"type": "alibi", "path": path, "window": 50})


def test_an_alibi_detector_of_another_width_than_the_reference_is_a_startup_error(
    alibi, tmp_path, reference_file
) -> None:
    spec = {"type": "alibi", "path": str(saved(tmp_path, "KSDrift"))}
    with pytest.raises(StartupError, match=r"detectors\.drift\.0 \(alibi\): .* takes 3 values"):
        build([spec], {"path": str(reference_file)})


def test_without_alibi_detect_the_agent_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "alibi_detect", None)
    spec = {"type": "alibi", "path": str(saved(tmp_path, "KSDrift"))}
    with pytest.raises(StartupError, match=r"cannot build detectors\.drift \(alibi\).*\[alibi\]"):
        build(spec)

"""Drift detectors built from the config and run through the pipeline (agent.drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy.special import softmax

from agent.config import config_from_dict
from agent.detection import build_detectors, load_reference
from agent.drift import DriftFeed, build_drift_detectors, read_reference
from agent.events import InferenceEvent
from agent.exceptions import StartupError
from agent.metrics import AgentMetrics
from agent.pipeline import Pipeline

CONTINUOUS = [0, 1, 2, 3]  # column 4 holds category codes 0, 1, 2

#: One spec per type, sized so that each finds a one-sd shift within a window of 100.
SPECS: dict[str, dict[str, Any]] = {
    "ks": {"features": CONTINUOUS, "window": 100},
    "cvm": {"features": CONTINUOUS, "window": 100},
    "chisquare": {"features": [4], "window": 100},
    "mmd": {"features": CONTINUOUS, "window": 100, "n_permutations": 50, "device": "cpu"},
    "lsdd": {"features": CONTINUOUS, "window": 100, "n_permutations": 50, "device": "cpu"},
    "psi": {"features": CONTINUOUS, "window": 100, "threshold": 0.5},
    "jensen-shannon": {"features": CONTINUOUS, "window": 100, "threshold": 0.3},
    "wasserstein": {"features": CONTINUOUS, "window": 100, "threshold": 0.5},
    "mmd-online": {"features": CONTINUOUS, "ert": 1000, "window_size": 20, "n_bootstraps": 5000},
    "cvm-online": {"features": CONTINUOUS, "ert": 200, "window_size": 20, "n_bootstraps": 10000},
    "output-class": {"window": 100},
    "output-confidence": {"window": 100},
    "output-entropy": {"window": 100},
    "tabular": {"schema": ["numeric"] * 4 + ["categorical"], "window": 100},
}
TESTS = {"ks", "cvm", "chisquare", "tabular", "mmd", "lsdd", "output-class", "output-confidence",
         "output-entropy"}  # fmt: skip


def traffic(rng: np.random.Generator, n: int, drifted: bool = False) -> tuple[np.ndarray, ...]:
    """Inputs (4 normal features and a categorical one) and the class probabilities of a
    3-class model; drifted traffic is shifted by one sd and has another category mix."""
    x = rng.normal(loc=1.0 if drifted else 0.0, size=(n, 5))
    x[:, 4] = rng.choice(3, size=n, p=[0.6, 0.2, 0.2] if drifted else None)
    logits = np.stack([2 * x[:, 0], x[:, 1], -2 * x[:, 0]], axis=1)
    return x, softmax(logits, axis=1)


def events(x: np.ndarray, outputs: np.ndarray | list | None = None) -> list[InferenceEvent]:
    outs = [None] * len(x) if outputs is None else outputs
    return [
        InferenceEvent(f"e{i}", "m", None, 0.0, row, outs[i], None, None, {})
        for i, row in enumerate(x)
    ]


def config(specs: list[dict[str, Any]], reference: dict[str, Any], **metrics: Any):
    data = {
        "kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
        "model": {"name": "m"},
        "reference": reference,
        "detectors": {"drift": specs},
        "metrics": metrics,
    }
    return config_from_dict(data, env={})


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "reference.npz"
    x, outputs = traffic(np.random.default_rng(0), 1000)
    np.savez(path, x=x, outputs=outputs)
    return path


def build(specs, reference: dict[str, Any], **metrics: Any):
    registry = CollectorRegistry()
    agent_metrics = AgentMetrics(registry, "m", None)
    feeds, n_features = build_drift_detectors(config(specs, reference, **metrics), agent_metrics)
    return Pipeline("m", None, feeds), registry, n_features


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"model": "m", **labels})


def run(pipeline: Pipeline, rng, n: int, drifted: bool, batch: int = 50) -> list:
    results = []
    for _ in range(n // batch):
        x, outputs = traffic(rng, batch, drifted)
        results.extend(pipeline.process(events(x, outputs)))
    return results


# ---------------------------------------------------------------------------------------------
# Every type, from a reference file


@pytest.mark.parametrize("kind", list(SPECS))
def test_each_type_flags_drifted_traffic_and_not_clean(kind, reference_file):
    pipeline, registry, n_features = build(
        [{"type": kind, **SPECS[kind]}], {"path": str(reference_file)}
    )
    assert n_features == 5
    rng = np.random.default_rng(1)
    flag = f"drift:{kind}"
    clean = run(pipeline, rng, 300, drifted=False)
    scored = [r for r in clean if flag in r.scores]
    assert len(scored) >= 200  # verdicts once the window is full
    assert sum(flag in r.flags for r in scored) <= 0.1 * len(scored)
    assert sample(registry, "robustwatch_drift_detected", detector=kind) == 0.0
    drifted = run(pipeline, rng, 300, drifted=True)
    assert all(flag in r.flags for r in drifted[-50:]), kind
    assert sample(registry, "robustwatch_drift_detected", detector=kind) == 1.0
    assert sample(registry, "robustwatch_drift_statistic", detector=kind) is not None
    p_value = sample(registry, "robustwatch_drift_p_value", detector=kind)
    assert (p_value is not None) == (kind in TESTS)
    if p_value is not None:
        assert drifted[-1].scores[flag] == pytest.approx(p_value)
        assert p_value <= 0.05
    assert sample(registry, "robustwatch_detector_errors_total", detector=kind) == 0.0


def test_several_detectors_run_side_by_side_each_with_its_own_flag(reference_file):
    specs = [
        {"type": "ks", **SPECS["ks"]},
        {"type": "ks", "name": "ks-categories", "features": [4], "window": 100},
        {"type": "mmd-online", **SPECS["mmd-online"]},
        {"type": "output-entropy", "window": 100},
    ]
    pipeline, _, _ = build(specs, {"path": str(reference_file)})
    rng = np.random.default_rng(2)
    run(pipeline, rng, 200, drifted=False)
    last = run(pipeline, rng, 200, drifted=True)[-1]
    assert set(last.flags) == {"drift:ks", "drift:ks-categories", "drift:mmd-online",
                               "drift:output-entropy"}  # fmt: skip
    assert set(last.scores) == set(last.flags)


# ---------------------------------------------------------------------------------------------
# Feature subsets and per-feature metrics


def test_features_pick_the_columns_tested(reference_file):
    # Only column 1 drifts: a detector on columns 0 and 2 must not see it.
    specs = [
        {"type": "ks", "name": "blind", "features": [0, 2], "window": 100},
        {"type": "ks", "name": "seeing", "features": [2, 1], "window": 100},
    ]
    pipeline, registry, _ = build(specs, {"path": str(reference_file)})
    rng = np.random.default_rng(3)
    x, _ = traffic(rng, 300)
    x[:, 1] += 1.5
    results = pipeline.process(events(x))
    assert "drift:seeing" in results[-1].flags and "drift:blind" not in results[-1].flags
    labels = {"detector": "seeing"}
    p1 = sample(registry, "robustwatch_feature_drift_p_value", feature="1", **labels)
    p2 = sample(registry, "robustwatch_feature_drift_p_value", feature="2", **labels)
    assert p1 < 1e-6 < p2
    assert sample(registry, "robustwatch_feature_drift_p_value", feature="0", **labels) is None
    assert sample(registry, "robustwatch_feature_drift_p_value", detector="blind", feature="0")


@pytest.mark.parametrize(("cap", "exported"), [(64, True), (5, True), (4, False), (0, False)])
def test_per_feature_series_only_up_to_the_cap(reference_file, cap, exported):
    pipeline, registry, _ = build(
        [{"type": "ks", "window": 50}], {"path": str(reference_file)}, max_feature_series=cap
    )
    x, _ = traffic(np.random.default_rng(4), 60)
    pipeline.process(events(x))
    series = [sample(registry, "robustwatch_feature_drift_p_value", detector="ks", feature=str(j))
              for j in range(5)]  # fmt: skip
    assert all((p is not None) == exported for p in series)
    assert sample(registry, "robustwatch_drift_p_value", detector="ks") is not None


def test_a_features_index_beyond_the_reference_is_a_startup_error_naming_the_key(reference_file):
    specs = [{"type": "ks"}, {"type": "cvm", "features": [0, 5]}]
    with pytest.raises(StartupError, match=r"detectors\.drift\.1\.features names column 5, but "):
        build(specs, {"path": str(reference_file)})


# ---------------------------------------------------------------------------------------------
# Preprocessing


@pytest.mark.parametrize(
    "preprocessing",
    [{"type": "random-projection", "dim": 3, "seed": 1},
     {"type": "untrained-encoder", "dim": 3, "hidden": 16, "seed": 1}],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["mmd", "lsdd", "mmd-online"])
def test_preprocessing_reduces_inputs_before_a_kernel_test(reference_file, kind, preprocessing):
    spec = {"type": kind, **SPECS[kind], "preprocessing": preprocessing}
    pipeline, registry, _ = build([spec], {"path": str(reference_file)})
    feed = pipeline.detectors[0]
    assert feed.stream.detector.preprocess.n_components == 3
    rng = np.random.default_rng(5)
    run(pipeline, rng, 100, drifted=False)
    assert f"drift:{kind}" in run(pipeline, rng, 200, drifted=True)[-1].flags
    # No per-feature series for reduced inputs.
    assert sample(registry, "robustwatch_feature_drift_p_value", detector=kind, feature="0") is None


# ---------------------------------------------------------------------------------------------
# The reference captured from the first events


def test_capture_first_fits_every_detector_on_the_first_events():
    specs = [
        {"type": "ks", **SPECS["ks"]},
        {"type": "mmd-online", **SPECS["mmd-online"]},
        {"type": "output-class", "window": 100},
    ]
    pipeline, registry, n_features = build(specs, {"capture_first": 400})
    assert n_features is None  # the decoder cannot know it before traffic comes
    rng = np.random.default_rng(6)
    first = run(pipeline, rng, 450, drifted=False, batch=150)  # 400 is not a batch multiple
    assert all(not r.flags and not r.scores for r in first[:400])
    assert all(feed.fitted for feed in pipeline.detectors)
    assert len(pipeline.detectors[0].stream.detector.x_ref_sorted_) == 400
    run(pipeline, rng, 200, drifted=False)
    drifted = run(pipeline, rng, 300, drifted=True)
    assert set(drifted[-1].flags) == {"drift:ks", "drift:mmd-online", "drift:output-class"}
    assert sample(registry, "robustwatch_feature_drift_p_value", detector="ks", feature="3")


def test_capturing_output_detectors_take_the_first_events_that_carry_outputs():
    pipeline, registry, _ = build([{"type": "output-class", "window": 50}], {"capture_first": 100})
    x, outputs = traffic(np.random.default_rng(7), 150)
    with_gaps = [None if i % 3 == 0 else o for i, o in enumerate(outputs)]
    pipeline.process(events(x, with_gaps))
    feed = pipeline.detectors[0]
    assert feed.fitted and feed.stream.detector.n_reference_ == 100
    skipped = sample(registry, "robustwatch_drift_skipped_events_total",
                     detector="output-class", reason="no-outputs")  # fmt: skip
    assert skipped == 50


def test_capture_first_smaller_than_a_detector_needs_is_a_startup_error():
    with pytest.raises(StartupError, match=r"capture_first=30 is too few for detectors\.drift\.0"):
        build([{"type": "mmd-online", "window_size": 20}], {"capture_first": 30})


def test_a_reference_that_cannot_be_fitted_flags_errors_and_says_why(caplog):
    # cvm-online needs max(window_sizes) reference rows; capture_first is checked for that, so
    # use an output detector fed logits of one column, which no detector can read.
    pipeline, registry, _ = build(
        [{"type": "output-entropy", "outputs": "logits", "window": 20}], {"capture_first": 10}
    )
    one_column = [np.array([0.3])] * 30
    results = pipeline.process(events(np.zeros((30, 2)), one_column))
    assert results[-1].flags == ("error:output-entropy",)
    assert "could not be fitted on the reference captured from the first 10 events" in caplog.text
    again = pipeline.process(events(np.zeros((5, 2)), one_column[:5]))
    assert again[0].flags == ("error:output-entropy",)
    assert sample(registry, "robustwatch_detector_errors_total", detector="output-entropy") == 2


# ---------------------------------------------------------------------------------------------
# Bad input: counted, never a silent p-value


def test_events_with_another_feature_count_fail_only_their_run(caplog):
    pipeline, registry, _ = build([{"type": "ks", "window": 10}], {"capture_first": 10})
    rng = np.random.default_rng(8)
    rows = list(rng.normal(size=(30, 3)))
    rows[25] = np.zeros(4)  # without a reference file, the decoder cannot refuse it
    results = pipeline.process(events(rows))
    assert [i for i, r in enumerate(results) if r.flags == ("error:ks",)] == [25]
    assert all("drift:ks" in r.scores for i, r in enumerate(results[19:], 19) if i != 25)
    assert sample(registry, "robustwatch_detector_errors_total", detector="ks") == 1
    assert "events with 4 input features reached ks, whose reference has 3" in caplog.text


def test_output_detectors_pass_by_and_count_events_they_cannot_read(reference_file):
    pipeline, registry, _ = build([{"type": "output-confidence", "window": 20}],
                                  {"path": str(reference_file)})  # fmt: skip
    x, outputs = traffic(np.random.default_rng(9), 40)
    outs: list = list(outputs)
    outs[0] = None  # no outputs
    outs[1] = np.array([0.5, 0.5])  # another shape than the reference's three classes
    outs[2] = np.array([np.nan, 0.5, 0.5])  # not finite
    outs[3] = np.array([0.5, 0.6, 0.1])  # sums to 1.2: not probabilities
    outs[4] = np.array([-0.1, 0.6, 0.5])
    results = pipeline.process(events(x, outs))
    assert all(not r.scores for r in results[:5])
    assert all(not r.flags or r.flags == ("drift:output-confidence",) for r in results)
    assert "drift:output-confidence" in results[-1].scores

    def skipped(reason: str) -> float:
        return sample(registry, "robustwatch_drift_skipped_events_total",
                      detector="output-confidence", reason=reason)  # fmt: skip

    assert (skipped("no-outputs"), skipped("bad-shape"), skipped("bad-value")) == (1, 1, 3)
    # The window holds only the 35 readable rows: 20 and 15 more, tested twice.
    assert pipeline.detectors[0].stream.last_result.n_test == 20


def test_a_category_the_reference_never_had_is_an_error_or_drift_as_configured(reference_file):
    for unseen, expected in (("error", "error:chisquare"), ("category", "drift:chisquare")):
        spec = {"type": "chisquare", "features": [4], "window": 20, "unseen": unseen}
        pipeline, registry, _ = build([spec], {"path": str(reference_file)})
        x, _ = traffic(np.random.default_rng(10), 40)
        x[30, 4] = 7.0
        results = pipeline.process(events(x))
        assert expected in results[-1].flags, unseen
        errors = sample(registry, "robustwatch_detector_errors_total", detector="chisquare")
        assert errors == (1 if unseen == "error" else 0)


def test_an_output_detector_needs_outputs_in_the_reference_file(tmp_path):
    np.save(tmp_path / "ref.npy", np.zeros((100, 3)))
    with pytest.raises(StartupError, match=r"detectors\.drift\.0 \(output-class\) reads the"):
        build([{"type": "output-class"}], {"path": str(tmp_path / "ref.npy")})


def test_an_unfittable_reference_file_is_a_startup_error_naming_the_detector(tmp_path):
    np.save(tmp_path / "ref.npy", np.zeros((30, 3)))
    with pytest.raises(StartupError, match=r"cannot fit detectors\.drift\.1 \(mmd-online\)"):
        build([{"type": "ks"}, {"type": "mmd-online"}], {"path": str(tmp_path / "ref.npy")})


def test_cuda_without_cuda_is_a_startup_error(reference_file, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(StartupError, match=r"cannot build detectors\.drift\.0 \(mmd\): .*CUDA"):
        build([{"type": "mmd", "device": "cuda"}], {"path": str(reference_file)})


# ---------------------------------------------------------------------------------------------
# The reference file and the runner's entry points


def test_reference_files_pair_outputs_with_inputs(tmp_path, reference_file):
    ref = read_reference(reference_file)
    assert ref.x.shape == (1000, 5) and ref.outputs.shape == (1000, 3)
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 2)), outputs=np.zeros((9, 3)))
    with pytest.raises(StartupError, match="10 rows of 'x' but 9 of 'outputs'"):
        read_reference(tmp_path / "bad.npz")
    np.save(tmp_path / "images.npy", np.zeros((4, 1, 8, 8)))
    assert load_reference(tmp_path / "images.npy").shape == (4, 64)


def test_the_older_single_mapping_still_builds_one_ks_test(reference_file):
    registry = CollectorRegistry()
    data = {
        "kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
        "model": {"name": "m"},
        "reference": {"path": str(reference_file)},
        "detectors": {"drift": {"window": 50, "p_val": 0.01}},
    }
    feeds, n_features = build_detectors(
        config_from_dict(data, env={}), AgentMetrics(registry, "m", None)
    )
    (feed,) = feeds
    assert isinstance(feed, DriftFeed) and feed.name == "ks" and n_features == 5
    assert (feed.stream.window, feed.stream.detector.p_val) == (50, 0.01)
    del data["reference"]
    metrics = AgentMetrics(CollectorRegistry(), "m", None)
    assert build_detectors(config_from_dict(data, env={}), metrics) == ([], None)

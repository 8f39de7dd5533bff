"""``detectors.drift`` as a list of detectors, its one-mapping shorthand, and ``reference``."""

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import ConfigError, DriftConfig, config_from_dict, load_config
from agent.config.drift_config import DRIFT_TYPES, THRESHOLDS, WINDOW_SIZES
from detectors import drift as drift_detectors

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "localhost:9092", "topics": ["inference"]},
    "model": {"name": "digits"},
}
CAPTURE = {"reference": {"capture_first": 500}}


def drift(*specs: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {**BASE, **CAPTURE, **sections, "detectors": {"drift": list(specs)}}


def error(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, env={})
    return info.value


# ---------------------------------------------------------------------------------------------
# Valid lists


def test_a_list_of_every_type_takes_each_type_s_defaults() -> None:
    cfg = config_from_dict(drift(*({"type": t} for t in DRIFT_TYPES)), env={})
    specs = {spec.type: spec for spec in cfg.detectors.drift_specs}
    assert list(specs) == list(DRIFT_TYPES)
    assert all(spec.name == spec.type for spec in specs.values())
    ks = specs["ks"]
    assert (ks.window, ks.p_val, ks.correction, ks.threshold, ks.ert) == (
        200,
        0.05,
        "bonferroni",
        None,
        None,
    )
    assert specs["chisquare"].unseen == "error"
    assert (specs["mmd"].n_permutations, specs["mmd"].device, specs["mmd"].seed) == (100, "auto", 0)
    assert (specs["psi"].threshold, specs["psi"].p_val) == (0.2, None)
    assert (specs["wasserstein"].threshold, specs["jensen-shannon"].threshold) == (0.1, 0.1)
    online = specs["mmd-online"]
    assert (online.ert, online.window_size, online.window, online.p_val) == (500, (50,), None, None)
    assert specs["cvm-online"].window_size == (20, 50)
    assert specs["output-entropy"].outputs == "probabilities"
    assert specs["output-entropy"].reads == "outputs" and specs["ks"].reads == "inputs"


def test_the_defaults_are_the_detector_classes_own() -> None:
    def default(cls: type, parameter: str) -> Any:
        return inspect.signature(cls).parameters[parameter].default

    classes = {
        "psi": drift_detectors.PSIDrift,
        "jensen-shannon": drift_detectors.JensenShannonDrift,
        "wasserstein": drift_detectors.WassersteinDrift,
    }
    for kind, cls in classes.items():
        assert THRESHOLDS[kind] == default(cls, "threshold"), kind
    assert WINDOW_SIZES["mmd-online"] == (default(drift_detectors.MMDDriftOnline, "window_size"),)
    assert WINDOW_SIZES["cvm-online"] == default(drift_detectors.CVMDriftOnline, "window_sizes")
    spec = config_from_dict(drift({"type": "mmd-online"}, {"type": "mmd"}), env={})
    online, mmd = spec.detectors.drift
    assert online.ert == default(drift_detectors.MMDDriftOnline, "ert")
    assert mmd.n_permutations == default(drift_detectors.MMDDrift, "n_permutations")
    assert mmd.p_val == default(drift_detectors.MMDDrift, "p_val")


def test_every_key_of_a_spec_is_read() -> None:
    cfg = config_from_dict(
        drift(
            {"type": "KS", "name": "ks-pixels", "window": 50, "p_val": 0.01, "correction": "FDR",
             "features": [3, 1]},
            {"type": "mmd", "window": 100, "p_val": 0.05, "n_permutations": 30, "device": "cpu",
             "seed": 7, "preprocessing": {"type": "untrained-encoder", "dim": 8, "hidden": 16}},
            {"type": "cvm-online", "ert": 100, "window_size": [10, 30], "n_bootstraps": 2000},
            {"type": "output-class", "outputs": "labels", "enabled": False},
            {"type": "psi", "threshold": 0.5},
            {"type": "chisquare", "unseen": "category", "features": [4]},
        ),
        env={},
    )  # fmt: skip
    ks, mmd, cvm, labels, psi, chisquare = cfg.detectors.drift
    assert (ks.type, ks.name, ks.window, ks.p_val, ks.correction, ks.features) == (
        "ks", "ks-pixels", 50, 0.01, "fdr", (3, 1),
    )  # fmt: skip
    assert (mmd.n_permutations, mmd.device, mmd.seed) == (30, "cpu", 7)
    assert (mmd.preprocessing.type, mmd.preprocessing.dim, mmd.preprocessing.hidden) == (
        "untrained-encoder",
        8,
        16,
    )
    assert (cvm.ert, cvm.window_size, cvm.n_bootstraps) == (100.0, (10, 30), 2000)
    assert labels.enabled is False and labels not in cfg.detectors.drift_specs
    assert psi.threshold == 0.5 and chisquare.unseen == "category"


def test_the_single_mapping_is_a_one_detector_shorthand() -> None:
    cfg = config_from_dict({**BASE, "detectors": {"drift": {"window": 50, "p_val": 0.01}}}, env={})
    assert isinstance(cfg.detectors.drift, DriftConfig)
    (spec,) = cfg.detectors.drift_specs
    assert (spec.type, spec.name, spec.window, spec.p_val) == ("ks", "ks", 50, 0.01)
    off = config_from_dict({**BASE, "detectors": {"drift": {"enabled": False}}}, env={})
    assert off.detectors.drift_specs == ()
    # The older form runs without a reference (drift detection is then off, with a warning).
    assert config_from_dict(BASE, env={}).detectors.drift_specs[0].type == "ks"


def test_an_empty_list_runs_no_drift_detector_and_needs_no_reference() -> None:
    cfg = config_from_dict({**BASE, "detectors": {"drift": []}}, env={})
    assert cfg.detectors.drift_specs == ()


def test_capture_first_or_path(tmp_path: Path) -> None:
    cfg = config_from_dict(drift({"type": "ks"}), env={})
    assert (cfg.reference.capture_first, cfg.reference.path) == (500, None)
    (tmp_path / "ref.npy").write_bytes(b"x")
    data = drift({"type": "ks"}, reference={"path": str(tmp_path / "ref.npy")})
    assert config_from_dict(data, env={}).reference.path == tmp_path / "ref.npy"


def test_max_feature_series() -> None:
    assert config_from_dict(BASE, env={}).metrics.max_feature_series == 64
    cfg = config_from_dict({**BASE, "metrics": {"max_feature_series": 0}}, env={})
    assert cfg.metrics.max_feature_series == 0


# ---------------------------------------------------------------------------------------------
# Invalid: each names its key path

INVALID = [
    # (detectors.drift, key path named first, a phrase of the message)
    ([{"type": "kss"}], "detectors.drift.0.type", "one of ks, cvm, chisquare"),
    ([{"type": "ks"}, {"type": "ks"}], "detectors.drift.1.name", "duplicate of detectors.drift.0"),
    ([{"type": "ks", "name": "a"}, {"type": "cvm", "name": "a"}], "detectors.drift.1.name", "'a'"),
    ([{"type": "ks", "name": "has space"}], "detectors.drift.0.name", "A-Z a-z 0-9"),
    ([{"type": "ks", "ert": 100}], "detectors.drift.0.ert", "only online detectors"),
    ([{"type": "mmd", "window_size": 10}], "detectors.drift.0.window_size", "does not take"),
    ([{"type": "cvm-online", "window_size": []}], "detectors.drift.0.window_size", ">= 2"),
    ([{"type": "cvm-online", "window_size": True}], "detectors.drift.0.window_size", ">= 2"),
    ([{"type": "psi", "p_val": 0.05}], "detectors.drift.0.p_val", "set threshold"),
    ([{"type": "ks", "threshold": 0.1}], "detectors.drift.0.threshold", "calibrated by p_val"),
    ([{"type": "mmd-online", "p_val": 0.05}], "detectors.drift.0.p_val", "calibrated by ert"),
    ([{"type": "mmd-online", "window": 50}], "detectors.drift.0.window", "window_size"),
    ([{"type": "mmd", "correction": "fdr"}], "detectors.drift.0.correction", "does not take"),
    ([{"type": "ks", "n_permutations": 10}], "detectors.drift.0.n_permutations", "not take"),
    ([{"type": "ks", "unseen": "category"}], "detectors.drift.0.unseen", "does not take"),
    ([{"type": "cvm-online", "preprocessing": {"type": "random-projection"}}],
     "detectors.drift.0.preprocessing", "does not take"),
    ([{"type": "ks", "device": "cuda"}], "detectors.drift.0.device", "does not take"),
    ([{"type": "output-class", "features": [0]}], "detectors.drift.0.features", "outputs"),
    ([{"type": "ks", "outputs": "logits"}], "detectors.drift.0.outputs", "does not take"),
    ([{"type": "output-entropy", "outputs": "labels"}], "detectors.drift.0.outputs",
     "only output-class"),
    ([{"type": "mmd", "p_val": 0.01, "n_permutations": 30}], "detectors.drift.0.n_permutations",
     "n_permutations >= 99"),
    ([{"type": "mmd-online", "window_size": [10, 20]}], "detectors.drift.0.window_size",
     "one window size"),
    ([{"type": "ks", "window": 5}], "detectors.drift.0.window", "an integer >= 10, got 5"),
    ([{"type": "ks", "p_val": 0}], "detectors.drift.0.p_val", "a float in (0, 1)"),
    ([{"type": "psi", "threshold": -1}], "detectors.drift.0.threshold", "a number > 0"),
    ([{"type": "mmd-online", "ert": 1}], "detectors.drift.0.ert", "a number > 1"),
    ([{"type": "cvm-online", "window_size": [10, 1]}], "detectors.drift.0.window_size.1",
     "an integer >= 2"),
    ([{"type": "ks", "features": []}], "detectors.drift.0.features", "non-empty list"),
    ([{"type": "ks", "features": [0, -1]}], "detectors.drift.0.features.1", "indices >= 0"),
    ([{"type": "ks", "features": [2, 0, 2]}], "detectors.drift.0.features.2", "duplicate of"),
    ([{"type": "mmd", "device": "tpu"}], "detectors.drift.0.device", "one of auto, cpu, cuda"),
    ([{"type": "mmd", "seed": -1}], "detectors.drift.0.seed", "an integer >= 0"),
    ([{"type": "mmd", "preprocessing": {"type": "pca"}}], "detectors.drift.0.preprocessing.type",
     "random-projection"),
    ([{"type": "mmd", "preprocessing": {"type": "random-projection", "hidden": 8}}],
     "detectors.drift.0.preprocessing.hidden", "only untrained-encoder"),
    ([{"type": "mmd", "preprocessing": {"type": "random-projection", "dim": 0}}],
     "detectors.drift.0.preprocessing.dim", "a positive integer"),
    ([{"type": "ks", "windw": 50}], "detectors.drift.0.windw", "did you mean 'window'?"),
    ([{"type": "ks"}, "ks"], "detectors.drift.1", "expected a mapping"),
    ("ks", "detectors.drift", "a list of detector mappings, or one mapping"),
    ({"type": "psi", "p_val": 0.1}, "detectors.drift.p_val", "set threshold"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "key", "phrase"), INVALID, ids=[i[1] for i in INVALID])
def test_an_invalid_spec_names_its_key(value: Any, key: str, phrase: str) -> None:
    err = error({**BASE, **CAPTURE, "detectors": {"drift": value}})
    assert err.paths[0] == key, str(err)
    assert str(err).splitlines()[0].startswith(f"config error at {key}: ")
    assert phrase in str(err)


def test_every_problem_of_a_list_is_reported() -> None:
    err = error(drift({"type": "ks", "window": 5}, {"type": "psi", "p_val": 0.1}, {"type": "x"}))
    assert err.paths == (
        "detectors.drift.0.window",
        "detectors.drift.1.p_val",
        "detectors.drift.2.type",
    )


def test_a_list_of_detectors_needs_a_reference() -> None:
    err = error({**BASE, "detectors": {"drift": [{"type": "ks"}]}})
    assert err.paths == ("reference",)
    assert "reference.path or reference.capture_first" in str(err)
    # Disabled detectors need none.
    cfg = config_from_dict({**BASE, "detectors": {"drift": [{"type": "ks", "enabled": False}]}})
    assert cfg.detectors.drift_specs == ()


def test_path_and_capture_first_exclude_each_other(tmp_path: Path) -> None:
    (tmp_path / "ref.npy").write_bytes(b"x")
    reference = {"path": str(tmp_path / "ref.npy"), "capture_first": 100}
    err = error(drift({"type": "ks"}, reference=reference))
    assert err.paths == ("reference.capture_first",) and "not both" in str(err)


@pytest.mark.parametrize(("value", "phrase"), [(5, "an integer >= 10"), ("many", ">= 10")])
def test_capture_first_is_an_integer_of_at_least_10(value: Any, phrase: str) -> None:
    err = error(drift({"type": "ks"}, reference={"capture_first": value}))
    assert err.paths == ("reference.capture_first",) and phrase in str(err)


def test_max_feature_series_is_not_negative() -> None:
    err = error({**BASE, "metrics": {"max_feature_series": -1}})
    assert err.paths == ("metrics.max_feature_series",)


# ---------------------------------------------------------------------------------------------
# From a file, with overrides


def test_env_overrides_name_list_items_by_index(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(drift({"type": "ks"}, {"type": "mmd", "n_permutations": 50})))
    env = {"ROBUSTWATCH_DETECTORS__DRIFT__1__P_VAL": "0.1"}
    cfg = load_config(path, env=env)
    assert cfg.detectors.drift[1].p_val == 0.1 and cfg.detectors.drift[0].p_val == 0.05
    cfg = load_config(path, env={}, overrides={"detectors.drift.0.window": 60})
    assert cfg.detectors.drift[0].window == 60


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("ROBUSTWATCH_DETECTORS__DRIFT__P_VAL", "detectors.drift.p_val"),
        ("ROBUSTWATCH_DETECTORS__DRIFT__2__P_VAL", "detectors.drift.2.p_val"),
    ],
)
def test_an_override_must_name_an_existing_list_item(tmp_path: Path, variable, key) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(drift({"type": "ks"}, {"type": "cvm"})))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={variable: "0.1"})
    assert info.value.paths == (key,)
    assert "detectors.drift is a list: name one of its items by index (0 to 1)" in str(info.value)
    assert f"[environment variable {variable}]" in str(info.value)


def test_an_error_in_a_list_item_names_its_file_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(drift({"type": "ks"}, {"type": "psi", "p_val": 0.1})))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "p_val" in text)
    assert str(info.value).endswith(f"[{path}:{line}]")


def test_the_list_commented_in_the_example_config_is_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "agent.yaml").read_text()
    start = text.index("  # drift:\n")
    block = text[start : text.index("\n\n", start)].splitlines()  # up to the next blank line
    lines = [line.replace("# ", "", 1) for line in block if line.startswith("  # ")]
    lines = [line for line in lines if not line.strip().startswith("#")]
    detectors = yaml.safe_load("detectors:\n" + "\n".join(lines))["detectors"]
    cfg = config_from_dict({**BASE, **CAPTURE, "detectors": detectors}, env={})
    assert len(cfg.detectors.drift_specs) >= 5

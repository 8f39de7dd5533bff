"""Per-input and stateful detectors built from the config and run through the pipeline
(agent.input_detectors), on a small CNN trained on scikit-learn's digits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from prometheus_client import CollectorRegistry

from agent.config import ConfigError, config_from_dict
from agent.detection import build_detectors
from agent.events import InferenceEvent
from agent.exceptions import StartupError
from agent.metrics import AgentMetrics
from agent.pipeline import Pipeline
from scoring.attacks import cw_l2
from tests.agent.stateful_config import stateful_section
from tests.detectors.adversarial.digits import digits, trained_cnn

SALT = "an example salt of 32 bytes, ok!"


class FailsOnLargeInputs(torch.nn.Module):
    """The digits CNN, raising on inputs with a value above 10 (as a model can fail on data)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x > 10).any()):
            raise ValueError("input out of the model's range")
        return self.inner(x)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = digits()
    root = tmp_path_factory.mktemp("input-detectors")
    model = trained_cnn()
    torch.jit.script(model).save(root / "model.pt")
    torch.jit.script(FailsOnLargeInputs(model)).save(root / "fragile.pt")
    with torch.no_grad():
        logits = model(torch.from_numpy(d.x_ref)).numpy()
    np.savez(root / "reference.npz", x=d.x_ref, y=d.y_ref, outputs=logits)
    np.save(root / "flat.npy", d.x_ref.reshape(len(d.x_ref), -1))
    return {"root": root, "model": root / "model.pt", "fragile": root / "fragile.pt"}


def make_config(
    files, detectors: dict[str, Any], model: str = "model", env: dict | None = None, **model_keys
):
    return config_from_dict(
        {
            "kafka": {"bootstrap_servers": "localhost:9092", "topics": "t"},
            "model": {"name": "digits", "path": str(files[model]), **model_keys},
            "reference": {"path": str(files["root"] / "reference.npz")},
            "detectors": {"drift": {"enabled": False}, **detectors},
        },
        env=env or {"SALT": SALT},
    )


class Runner:
    """The pipeline of a config, counting the results' flags as the agent's runner does."""

    def __init__(self, config):
        self.metrics = AgentMetrics(CollectorRegistry(), config.model.name, None)
        detectors, _ = build_detectors(config, self.metrics)
        self.pipeline = Pipeline(config.model.name, None, detectors, clock=lambda: 0.0)

    def process(self, events: list[InferenceEvent]):
        results = self.pipeline.process(events)
        self.metrics.count_flags(r.flags for r in results)
        return results


def pipeline_for(config) -> tuple[Runner, AgentMetrics]:
    runner = Runner(config)
    return runner, runner.metrics


def events(x: np.ndarray, outputs=None, clients=None) -> list[InferenceEvent]:
    rows = x.reshape(len(x), -1).astype(np.float64)
    return [
        InferenceEvent(
            f"e{i}",
            "digits",
            None,
            0.0,
            row,
            None if outputs is None else outputs[i],
            None,
            None if clients is None else clients[i],
            {},
        )
        for i, row in enumerate(rows)
    ]


def logits_of(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return trained_cnn()(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)


def flagged(results, flag: str) -> np.ndarray:
    return np.array([flag in r.flags for r in results])


def sample(metrics: AgentMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"model": "digits", **labels} if labels else {})
    return 0.0 if value is None else value


def test_ensemble_flags_cw_examples_far_above_its_clean_rate(files):
    d = digits()
    squeeze = {"type": "feature-squeezing", "squeezers": ["bit-depth"], "bits": 3}
    noise = {"type": "noise-consistency"}
    confidence = {"type": "max-softmax", "source": "model"}  # the model's logits of the inputs
    members = [squeeze, noise, confidence]
    config = make_config(
        files, {"adversarial": [{"type": "ensemble", "fpr": 0.05, "members": members}]}
    )
    pipeline, metrics = pipeline_for(config)
    clean = pipeline.process(events(d.x_test))
    model = trained_cnn()
    correct = model(torch.from_numpy(d.x_test)).argmax(1).numpy() == d.y_test
    x, y = d.x_test[correct][:120], d.y_test[correct][:120]
    attack = cw_l2(model, x, y, steps=50, search_steps=5)
    adv = attack.x_adv.numpy()[attack.success.numpy()]
    attacked = pipeline.process(events(adv))

    clean_rate = flagged(clean, "adversarial:ensemble").mean()
    detected = flagged(attacked, "adversarial:ensemble").mean()
    assert clean_rate <= 0.10  # 5% target; 447 held-out events
    assert len(adv) >= 50 and detected >= 0.95 and detected > 5 * clean_rate
    assert all("adversarial:ensemble" in r.scores for r in clean)
    n_flags = sample(metrics, "robustwatch_flags_total", detector="adversarial:ensemble")
    assert n_flags == flagged(clean, "adversarial:ensemble").sum() + round(detected * len(adv))
    n_scored = len(d.x_test) + len(adv)
    name = "robustwatch_detector_score_count"
    assert sample(metrics, name, detector="adversarial:ensemble") == n_scored


def test_outlier_detectors_read_logits_from_the_events_outputs_without_a_model(files):
    d = digits()
    config = config_from_dict(
        {
            "kafka": {"bootstrap_servers": "localhost:9092", "topics": "t"},
            "model": {"name": "digits"},
            "reference": {"path": str(files["root"] / "reference.npz")},
            "detectors": {"drift": {"enabled": False}, "outlier": [{"type": "energy"}]},
        },
        env={},
    )
    pipeline, metrics = pipeline_for(config)
    noise = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    clean = pipeline.process(events(d.x_test, logits_of(d.x_test)))
    odd = pipeline.process(events(noise, logits_of(noise)))
    assert flagged(clean, "outlier:energy").mean() <= 0.04  # fpr 0.01
    assert flagged(odd, "outlier:energy").mean() > 0.2
    missing = pipeline.process(events(d.x_test[:2]))  # no outputs
    assert all(r.flags == ("error:energy",) for r in missing)
    assert missing[0].errors == {"energy": "the event carries no outputs"}
    assert sample(metrics, "robustwatch_flags_total", detector="error:energy") == 2


def test_bad_events_are_flagged_with_their_reason_and_the_rest_scored(files):
    d = digits()
    config = make_config(
        files,
        {"adversarial": [{"type": "feature-squeezing", "squeezers": ["bit-depth"], "bits": 3}]},
        model="fragile",
    )
    pipeline, metrics = pipeline_for(config)
    x = d.x_test[:6].reshape(6, -1).astype(np.float64)
    x[2, 5] = np.nan
    x[4, 0] = 50.0  # the model raises on it
    results = pipeline.process(events(x) + events(np.ones((1, 10))))
    assert [r.flags for r in results][2] == ("error:squeeze",)
    assert results[2].errors["squeeze"] == "NaN or inf in the event's inputs"
    assert results[4].flags == ("error:squeeze",)
    assert "input out of the model's range" in results[4].errors["squeeze"]
    assert results[6].errors["squeeze"] == "an input of 10 values; the model takes 64"
    for i in (0, 1, 3, 5):
        assert "adversarial:squeeze" in results[i].scores and not results[i].errors
    body = json.loads(results[4].to_json())
    assert body["flags"] == ["error:squeeze"] and "squeeze" in body["errors"]
    assert "errors" not in json.loads(results[0].to_json())
    assert sample(metrics, "robustwatch_flags_total", detector="error:squeeze") == 3


def test_stateful_detection_flags_the_probing_client_only(files):
    d = digits()
    config = make_config(
        files,
        {"stateful": stateful_section(15)},
    )
    pipeline, metrics = pipeline_for(config)
    rng = np.random.default_rng(0)
    benign = d.x_test[:200].reshape(200, -1)
    base = d.x_test[300].reshape(-1)
    probes = np.clip(base + rng.choice([-0.05, 0.0, 0.05], (200, 64), p=[0.02, 0.96, 0.02]), 0, 1)
    x = np.stack([benign, probes], 1).reshape(400, 64)
    clients = [c for i in range(200) for c in (f"user-{i % 17}", "mallory")]
    results = []
    for start in range(0, 400, 50):  # as micro-batches
        results += pipeline.process(events(x[start : start + 50], clients=clients[start:]))
    hits = flagged(results, "query-attack")
    attacker = np.array([c == "mallory" for c in clients])
    assert hits[attacker].argmax() < 50 and hits[attacker][50:].all()
    assert not hits[~attacker].any()
    assert all(r.scores["query-attack"] >= 0 for r in results)
    assert sample(metrics, "robustwatch_query_attack_suspects") == 1
    assert 0 < sample(metrics, "robustwatch_stateful_index_entries") <= 400
    assert sample(metrics, "robustwatch_flags_total", detector="query-attack") == hits.sum()


def test_a_flat_reference_takes_its_shape_from_model_input_shape(files):
    config = config_from_dict(
        {
            "kafka": {"bootstrap_servers": "localhost:9092", "topics": "t"},
            "model": {"name": "digits", "path": str(files["model"]), "input_shape": [1, 8, 8]},
            "reference": {"path": str(files["root"] / "flat.npy")},
            "detectors": {"drift": {"enabled": False}, "adversarial": [{"type": "mahalanobis"}]},
        },
        env={},
    )
    pipeline, _ = pipeline_for(config)
    results = pipeline.process(events(digits().x_test[:20]))
    assert all("adversarial:mahalanobis" in r.scores for r in results)
    wrong = config.model_copy(
        update={"model": config.model.model_copy(update={"input_shape": (3, 8)})}
    )
    with pytest.raises(StartupError, match=r"model.input_shape \[3, 8\] holds 24 values"):
        pipeline_for(wrong)


def test_output_detectors_need_reference_outputs_or_the_model(files, tmp_path):
    np.savez(tmp_path / "ref.npz", x=digits().x_ref)
    config = config_from_dict(
        {
            "kafka": {"bootstrap_servers": "localhost:9092", "topics": "t"},
            "model": {"name": "digits"},
            "reference": {"path": str(tmp_path / "ref.npz")},
            "detectors": {"drift": {"enabled": False}, "outlier": [{"type": "max-softmax"}]},
        },
        env={},
    )
    with pytest.raises(
        StartupError, match=r"detectors.outlier.0 \(max-softmax\) reads .*'outputs'"
    ):
        pipeline_for(config)
    with_model = make_config(files, {"outlier": [{"type": "max-softmax"}]})
    with_model = with_model.model_copy(
        update={"reference": with_model.reference.model_copy(update={"path": tmp_path / "ref.npz"})}
    )
    pipeline, _ = pipeline_for(with_model)  # the model computes the reference's logits
    assert pipeline.process(events(digits().x_test[:3], logits_of(digits().x_test[:3])))


@pytest.mark.parametrize(
    ("detectors", "key", "words"),
    [
        ({"adversarial": [{"type": "energy", "sigma": 0.1}]}, "detectors.adversarial.0.sigma",
         "type 'energy' does not take sigma"),
        ({"adversarial": [{"type": "squeeze"}]}, "detectors.adversarial.0.type", "expected one of"),
        ({"outlier": [{"type": "energy", "fpr": 0}]}, "detectors.outlier.0.fpr", "(0, 1)"),
        ({"adversarial": [{"type": "ensemble"}]}, "detectors.adversarial.0.members",
         "non-empty list of members"),
        ({"adversarial": [{"type": "ensemble", "members": [{"type": "ensemble", "members": [
            {"type": "energy"}]}]}]}, "detectors.adversarial.0.members.0.type",
         "cannot be a member"),
        ({"adversarial": [{"type": "feature-squeezing", "bounds": [1, 0]}]},
         "detectors.adversarial.0.bounds", "low < high"),
        ({"adversarial": [{"type": "energy"}], "outlier": [{"type": "energy"}]},
         "detectors.outlier.0.name", "duplicate of detectors.adversarial.0's name"),
        ({"outlier": [{"type": "energy", "batch_size": 8}]}, "detectors.outlier.0.batch_size",
         "only with source: model"),
        ({"outlier": [{"type": "max-softmax", "source": "model", "outputs": "probabilities"}]},
         "detectors.outlier.0.outputs", "scores the model's logits"),
        ({"outlier": [{"type": "energy", "source": "traffic"}]}, "detectors.outlier.0.source",
         "expected one of"),
        ({"stateful": {"enabled": True}}, "detectors.stateful.salt_env", "exactly one of"),
        ({"stateful": {"enabled": True, "salt_env": "UNSET"}}, "detectors.stateful.salt_env",
         "unset or empty"),
        ({"stateful": {"enabled": True, "salt_env": "SHORT"}}, "detectors.stateful.salt_env",
         "holds a salt of 5 bytes"),
        ({"stateful": {"enabled": True, "salt_env": "SALT", "client_threshold": 33}},
         "detectors.stateful.client_threshold", "from 1 to 32"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(files, detectors, key, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(
            {
                "kafka": {"bootstrap_servers": "localhost:9092", "topics": "t"},
                "model": {"name": "digits", "path": str(files["model"])},
                "reference": {"path": str(files["root"] / "reference.npz")},
                "detectors": detectors,
            },
            env={"SALT": SALT, "SHORT": "short"},
        )
    assert f"at {key}:" in str(err.value) and words in str(err.value)
    assert SALT not in str(err.value) and "short" not in str(err.value)


def test_model_detectors_need_a_model_and_a_reference_file(files):
    base = {"kafka": {"bootstrap_servers": "localhost:9092", "topics": "t"}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(
            {**base, "model": {"name": "m"}, "reference": {"capture_first": 100},
             "detectors": {"adversarial": [{"type": "noise-consistency"}]}},
            env={},
        )  # fmt: skip
    text = str(err.value)
    assert "at reference.path: detectors.adversarial.0 (noise) is calibrated on" in text
    assert "at model.path: detectors.adversarial.0 (noise) runs the model" in text
    with pytest.raises(ConfigError, match=r"at model.path: detectors.outlier.0 \(energy\) runs"):
        config_from_dict(
            {**base, "model": {"name": "m"},
             "reference": {"path": str(files["root"] / "reference.npz")},
             "detectors": {"outlier": [{"type": "energy", "source": "model"}]}},
            env={},
        )  # fmt: skip


def test_the_salt_is_read_from_a_file_and_never_shown(tmp_path, files):
    (tmp_path / "salt").write_text(SALT + "\n")
    config = make_config(
        files, {"stateful": {"enabled": True, "salt_file": str(tmp_path / "salt")}}
    )
    assert config.detectors.stateful.salt == SALT.encode()
    assert SALT not in repr(config) and SALT not in config.model_dump_json()


def test_the_detectors_commented_in_the_example_config_are_valid(files) -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "agent.yaml").read_text()
    start = text.index("  # adversarial:\n")
    block = text[start : text.index("\n\n", start)].splitlines()
    lines = [line.replace("# ", "", 1) for line in block if line.startswith("  # ")]
    lines = [line for line in lines if not line.strip().startswith("#")]
    detectors = yaml.safe_load("detectors:\n" + "\n".join(lines))["detectors"]
    cfg = make_config(files, detectors, env={"ROBUSTWATCH_SALT": SALT})
    assert {spec.type for _, _, spec in cfg.detectors.input_specs} == {
        "feature-squeezing", "noise-consistency", "mahalanobis", "ensemble", "energy",
        "max-softmax",
    }  # fmt: skip
    assert cfg.detectors.stateful.enabled and cfg.detectors.stateful.salt == SALT.encode()


def test_a_stateful_state_file_is_restored_or_ignored_with_a_warning(files, tmp_path, caplog):
    from agent.input_detectors import QueryAttackFeed

    stateful = {"enabled": True, "salt_env": "SALT", "window_size": 4, "top_k": 30,
                "match_threshold": 15, "state_file": str(tmp_path / "s" / "state.npz")}  # fmt: skip
    runner, _ = pipeline_for(make_config(files, {"stateful": stateful}))
    (feed,) = [d for d in runner.pipeline.detectors if isinstance(d, QueryAttackFeed)]
    runner.process(events(digits().x_test[:20], clients=["a"] * 20))
    feed.save_state()
    again, _ = pipeline_for(make_config(files, {"stateful": stateful}))
    (restored,) = [d for d in again.pipeline.detectors if isinstance(d, QueryAttackFeed)]
    assert restored.detector.snapshot(now=0).fingerprints == 20
    other = {**stateful, "window_size": 8}
    with caplog.at_level("WARNING", logger="agent.input_detectors"):
        fresh, _ = pipeline_for(make_config(files, {"stateful": other}))
    assert "starts empty: cannot restore" in caplog.text and "window_size 4 (now 8)" in caplog.text
    (empty,) = [d for d in fresh.pipeline.detectors if isinstance(d, QueryAttackFeed)]
    assert empty.detector.snapshot(now=0).fingerprints == 0
    (tmp_path / "a-file").write_text("")
    blocked = {**stateful, "state_file": str(tmp_path / "a-file" / "state.npz")}
    with pytest.raises(StartupError, match=r"detectors\.stateful\.state_file: cannot create"):
        pipeline_for(make_config(files, {"stateful": blocked}))

"""Tests for agent.config: loading, validation messages, environment overrides and secrets."""

import copy
import traceback
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from agent.config import AgentConfig, ConfigError, KafkaSecurity, config_from_dict, load_config
from agent.exceptions import ConfigError as ExceptionsConfigError

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55w0rd"

MINIMAL: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "localhost:9092", "topics": ["inference"]},
    "model": {"name": "digits"},
}


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` deep-updated with ``update``; a value of None deletes the key."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def write(directory: Path, data: Any, name: str = "agent.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_error(path: Path, **kwargs: Any) -> ConfigError:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------------------
# Valid configs


def test_full_config_loads_with_its_values(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"model")
    (tmp_path / "ref.npz").write_bytes(b"ref")
    (tmp_path / "ca.pem").write_text("ca")
    (tmp_path / "password").write_text(SECRET + "\n")
    data = {
        "kafka": {
            "bootstrap_servers": "k1:9092, k2:9093",
            "topics": "inference.requests",
            "group_id": "g",
            "group_instance_id": "pod-0",
            "client_id": "c",
            "format": "KServe-CloudEvents",
            "dead_letter_topic": "dl",
            "results_topic": "res",
            "emit": "all",
            "max_record_bytes": 1024,
            "client_id_header": "x-client",
            "join_ttl_seconds": 5,
            "max_pending_joins": 7,
            "consumer": {"max_poll_records": 50, "auto_offset_reset": "latest"},
            "producer": {"acks": 1, "linger_ms": 5, "api_version": [2, 8]},
            "security": {
                "protocol": "sasl_ssl",
                "ssl_cafile": "ca.pem",
                "sasl_mechanism": "scram-sha-512",
                "sasl_username": "agent",
                "sasl_password_file": "password",
            },
        },
        "model": {"name": "digits", "version": 3, "path": "model.pt"},
        "reference": {"path": "ref.npz"},
        "detectors": {
            "drift": {"enabled": False, "window": 50, "p_val": 0.01, "correction": "fdr"}
        },
        "pipeline": {
            "max_batch_records": 10,
            "max_inflight_batches": 2,
            "poll_timeout_ms": 5,
            "shutdown_timeout_seconds": 1.5,
            "startup_retry_max_seconds": 0,
        },
        "metrics": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "warn", "format": "JSON"},
    }
    cfg = load_config(write(tmp_path, data), env={})

    k = cfg.kafka
    assert k.bootstrap_servers == ("k1:9092", "k2:9093")
    assert k.topics == ("inference.requests",)
    assert (k.group_id, k.group_instance_id, k.client_id) == ("g", "pod-0", "c")
    assert (k.format, k.emit) == ("kserve-cloudevents", "all")
    assert (k.dead_letter_topic, k.results_topic) == ("dl", "res")
    assert (k.max_record_bytes, k.client_id_header) == (1024, "x-client")
    assert (k.join_ttl_seconds, k.max_pending_joins) == (5.0, 7)
    assert k.consumer == {"max_poll_records": 50, "auto_offset_reset": "latest"}
    assert k.producer == {"acks": 1, "linger_ms": 5, "api_version": (2, 8)}
    assert k.security.protocol == "SASL_SSL"
    assert k.security.sasl_mechanism == "SCRAM-SHA-512"
    assert k.security.ssl_cafile == tmp_path / "ca.pem"
    assert k.security.sasl_password.get_secret_value() == SECRET  # trailing newline dropped
    assert cfg.model.version == "3"
    assert cfg.model.path == tmp_path / "model.pt"
    assert cfg.reference.path == tmp_path / "ref.npz"
    drift = cfg.detectors.drift
    assert (drift.enabled, drift.window, drift.p_val, drift.correction) == (False, 50, 0.01, "fdr")
    p = cfg.pipeline
    assert (p.max_batch_records, p.max_inflight_batches, p.poll_timeout_ms) == (10, 2, 5)
    assert (p.shutdown_timeout_seconds, p.startup_retry_max_seconds) == (1.5, 0.0)
    assert (cfg.metrics.host, cfg.metrics.port) == ("127.0.0.1", 0)
    assert (cfg.logging.level, cfg.logging.format) == ("WARNING", "json")


def test_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), env={})
    k = cfg.kafka
    assert k.bootstrap_servers == ("localhost:9092",)
    assert (k.group_id, k.group_instance_id, k.client_id) == ("robustwatch", None, "robustwatch")
    assert (k.format, k.emit) == ("auto", "flagged")
    assert (k.dead_letter_topic, k.results_topic) == (
        "robustwatch.dead-letters",
        "robustwatch.results",
    )
    assert k.max_record_bytes == 16 * 1024 * 1024
    assert (k.client_id_header, k.join_ttl_seconds, k.max_pending_joins) == (
        "client-id",
        60.0,
        10000,
    )
    assert k.consumer == {} and k.producer == {}
    assert k.security.protocol == "PLAINTEXT" and k.security.sasl_password is None
    assert k.security.client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert (cfg.model.version, cfg.model.path, cfg.reference.path) == (None, None, None)
    drift = cfg.detectors.drift
    assert (drift.enabled, drift.window, drift.p_val, drift.correction) == (
        True,
        200,
        0.05,
        "bonferroni",
    )
    p = cfg.pipeline
    assert (p.max_batch_records, p.max_inflight_batches, p.poll_timeout_ms) == (1000, 4, 100)
    assert (p.shutdown_timeout_seconds, p.startup_retry_max_seconds) == (10.0, 300.0)
    assert (cfg.metrics.host, cfg.metrics.port) == ("0.0.0.0", 9108)
    assert (cfg.logging.level, cfg.logging.format) == ("INFO", "text")


def test_example_config_is_valid() -> None:
    cfg = load_config(REPO / "examples" / "agent.yaml", env={})
    assert cfg.model.name == "digits"
    assert cfg.kafka.consumer["auto_offset_reset"] == "earliest"


def test_empty_sections_take_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "metrics:\ndetectors:\n  drift:\n")
    cfg = load_config(path, env={})
    assert cfg.metrics.port == 9108 and cfg.detectors.drift.window == 200


def test_config_is_frozen() -> None:
    cfg = config_from_dict(MINIMAL, env={})
    with pytest.raises(pydantic.ValidationError):
        cfg.metrics.port = 1  # type: ignore[misc]
    assert isinstance(cfg, AgentConfig)


def test_config_error_is_a_value_error_from_agent_exceptions() -> None:
    assert ConfigError is ExceptionsConfigError
    assert issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------------------------------------
# Invalid configs: each error names its key path


SASL = {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}

INVALID = [
    # (update to MINIMAL, key path named on the first line, a phrase of the message)
    ({"kafak": {}}, "kafak", "did you mean 'kafka'?"),
    ({"kafka": {"topcs": ["a"]}}, "kafka.topcs", "did you mean 'topics'?"),
    ({"metrics": {"prot": 1}}, "metrics.prot", "valid keys: host, port"),
    (
        {"kafka": {"max_record_bytes": "abc"}},
        "kafka.max_record_bytes",
        "a positive integer, got 'abc'",
    ),
    ({"kafka": {"max_record_bytes": 0}}, "kafka.max_record_bytes", "a positive integer, got 0"),
    ({"kafka": {"join_ttl_seconds": -1}}, "kafka.join_ttl_seconds", "a positive number, got -1"),
    ({"kafka": {"format": "xml"}}, "kafka.format", "one of auto, oip-json, kserve-cloudevents"),
    ({"kafka": {"emit": "some"}}, "kafka.emit", "expected one of flagged, all, got 'some'"),
    (
        {"detectors": {"drift": {"p_val": 1.5}}},
        "detectors.drift.p_val",
        "a float in (0, 1), got 1.5",
    ),
    ({"detectors": {"drift": {"window": 5}}}, "detectors.drift.window", "an integer >= 10, got 5"),
    ({"detectors": {"drift": {"window": True}}}, "detectors.drift.window", "got True"),
    ({"detectors": {"drift": {"correction": "holm"}}}, "detectors.drift.correction", "fdr"),
    ({"detectors": {"drift": {"enabled": "maybe"}}}, "detectors.drift.enabled", "true or false"),
    ({"model": {"name": None}}, "model.name", "missing required key"),
    ({"model": {"name": ""}}, "model.name", "a non-empty string, got ''"),
    ({"model": {"version": 1.10}}, "model.version", "quote numbers"),
    ({"model": {"path": "nope.pt"}}, "model.path", "expected an existing file, got 'nope.pt'"),
    ({"model": None}, "model", "missing required key"),
    ({"kafka": ["a"]}, "kafka", "expected a mapping, got ['a']"),
    ({"kafka": {"topics": None}}, "kafka.topics", "missing required key"),
    ({"kafka": {"topics": []}}, "kafka.topics", "at least one topic"),
    ({"kafka": {"topics": ["a", "b", "a"]}}, "kafka.topics.2", "duplicate of kafka.topics.0"),
    ({"kafka": {"topics": ["ok", "not ok"]}}, "kafka.topics.1", "Kafka topic name"),
    ({"kafka": {"bootstrap_servers": "kafka"}}, "kafka.bootstrap_servers", "host:port"),
    ({"kafka": {"bootstrap_servers": ["k:1", "k:0"]}}, "kafka.bootstrap_servers.1", "'k:0'"),
    ({"kafka": {"results_topic": "robustwatch.dead-letters"}}, "kafka.results_topic", "differ"),
    ({"kafka": {"dead_letter_topic": "inference"}}, "kafka.dead_letter_topic", "input topics"),
    ({"kafka": {"consumer": {"group_id": "x"}}}, "kafka.consumer.group_id", "use kafka.group_id"),
    (
        {"kafka": {"consumer": {"enable_auto_commit": True}}},
        "kafka.consumer.enable_auto_commit",
        "",
    ),
    ({"kafka": {"consumer": {"bootstrap_servers": "x:1"}}}, "kafka.consumer.bootstrap_servers", ""),
    ({"kafka": {"consumer": {"value_deserializer": "x"}}}, "kafka.consumer.value_deserializer", ""),
    (
        {"kafka": {"consumer": {"ssl_cafile": "ca.pem"}}},
        "kafka.consumer.ssl_cafile",
        "use kafka.security.ssl_cafile",
    ),
    ({"kafka": {"consumer": {"sasl_mechanism": "PLAIN"}}}, "kafka.consumer.sasl_mechanism", ""),
    (
        {"kafka": {"consumer": {"max_pol_records": 5}}},
        "kafka.consumer.max_pol_records",
        "did you mean 'max_poll_records'?",
    ),
    ({"kafka": {"consumer": {"session_timeout_ms": "x"}}}, "kafka.consumer.session_timeout_ms", ""),
    (
        {"kafka": {"consumer": {"auto_offset_reset": "first"}}},
        "kafka.consumer.auto_offset_reset",
        "",
    ),
    ({"kafka": {"producer": {"acks": 0}}}, "kafka.producer.acks", "acks=0"),
    ({"kafka": {"producer": {"acks": 2}}}, "kafka.producer.acks", "'all', -1 or 1"),
    ({"kafka": {"producer": {"key_serializer": "x"}}}, "kafka.producer.key_serializer", ""),
    ({"kafka": {"producer": {"transactional_id": "t"}}}, "kafka.producer.transactional_id", ""),
    ({"kafka": {"security": {"protocol": "TLS"}}}, "kafka.security.protocol", "SASL_SSL"),
    (
        {"kafka": {"security": {**SASL, "sasl_mechanism": None, "sasl_password_env": "PW"}}},
        "kafka.security.sasl_mechanism",
        "required when protocol is SASL_SSL",
    ),
    (
        {"kafka": {"security": {**SASL, "sasl_password_env": "PW", "sasl_password_file": "pw"}}},
        "kafka.security.sasl_password_env",
        "only one of",
    ),
    ({"kafka": {"security": SASL}}, "kafka.security.sasl_password_env", "required"),
    (
        {"kafka": {"security": {**SASL, "sasl_password_file": "missing-password"}}},
        "kafka.security.sasl_password_file",
        "does not exist",
    ),
    (
        {"kafka": {"security": {**SASL, "sasl_password_env": "UNSET_PASSWORD_VAR"}}},
        "kafka.security.sasl_password_env",
        "unset",
    ),
    (
        {"kafka": {"security": {"sasl_username": "u"}}},
        "kafka.security.sasl_username",
        "needs protocol SASL_PLAINTEXT or SASL_SSL",
    ),
    ({"kafka": {"security": {"ssl_cafile": "missing.pem"}}}, "kafka.security.ssl_cafile", "exist"),
    ({"reference": {"path": "missing.npz"}}, "reference.path", "expected an existing file"),
    ({"reference": {"path": "ref.csv"}}, "reference.path", ".npz or .npy"),
    ({"pipeline": {"max_inflight_batches": 0}}, "pipeline.max_inflight_batches", "positive"),
    ({"pipeline": {"startup_retry_max_seconds": -1}}, "pipeline.startup_retry_max_seconds", ">= 0"),
    ({"metrics": {"port": 70000}}, "metrics.port", "from 0 to 65535, got 70000"),
    ({"logging": {"level": "LOUD"}}, "logging.level", "DEBUG, INFO, WARNING, ERROR"),
    ({"logging": {"format": "xml"}}, "logging.format", "text, json"),
]


@pytest.mark.parametrize(
    ("update", "key", "phrase"), INVALID, ids=[f"{i}-{case[1]}" for i, case in enumerate(INVALID)]
)
def test_invalid_value_names_its_key(
    tmp_path: Path, update: dict[str, Any], key: str, phrase: str
) -> None:
    err = load_error(write(tmp_path, merged(MINIMAL, update)))
    first = str(err).splitlines()[0]
    assert first.startswith(f"config error at {key}: "), str(err)
    assert phrase in str(err)
    assert err.paths[0] == key


def test_error_message_matches_the_documented_form(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, merged(MINIMAL, {"kafka": {"max_record_bytes": "abc"}})))
    assert str(err).startswith(
        "config error at kafka.max_record_bytes: expected a positive integer, got 'abc'"
    )


def test_all_errors_are_reported_one_per_line_with_their_file_line(tmp_path: Path) -> None:
    data = merged(
        MINIMAL,
        {
            "kafka": {"emit": "some", "max_record_bytes": -1},
            "detectors": {"drift": {"p_val": 2}},
            "metrics": {"prot": 1},
        },
    )
    path = write(tmp_path, data)
    err = load_error(path)
    lines = str(err).splitlines()
    assert len(lines) == 4
    assert err.paths == (
        "kafka.emit",
        "kafka.max_record_bytes",
        "detectors.drift.p_val",
        "metrics.prot",
    )
    for line, key in zip(lines, err.paths, strict=True):
        assert line.startswith(f"config error at {key}: ")
    text = path.read_text().splitlines()
    emit_line = next(i for i, line in enumerate(text, 1) if "emit:" in line)
    assert lines[0].endswith(f"[{path}:{emit_line}]")


def test_inline_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = merged(MINIMAL, {"kafka": {"security": {**SASL, "sasl_password": SECRET}}})
    err = load_error(write(tmp_path, data))
    assert str(err).startswith("config error at kafka.security.sasl_password: ")
    assert "sasl_password_env" in str(err)
    # Nor in the traceback: pydantic's ValidationError, which shows inputs, is not chained.
    assert SECRET not in "".join(traceback.format_exception(err))


@pytest.mark.parametrize("key", ["sasl_plain_password", "ssl_password"])
@pytest.mark.parametrize("client", ["consumer", "producer"])
def test_refused_client_password_is_not_echoed(tmp_path: Path, client: str, key: str) -> None:
    err = load_error(write(tmp_path, merged(MINIMAL, {"kafka": {client: {key: SECRET}}})))
    assert f"kafka.{client}.{key}" in str(err)
    assert SECRET not in str(err)


def test_password_env_holding_the_password_by_mistake_is_not_echoed(tmp_path: Path) -> None:
    data = merged(MINIMAL, {"kafka": {"security": {**SASL, "sasl_password_env": "Hunter2_x"}}})
    err = load_error(write(tmp_path, data))
    assert "kafka.security.sasl_password_env" in str(err)
    assert "Hunter2_x" not in str(err)


# ---------------------------------------------------------------------------------------------
# The file itself


def test_missing_file(tmp_path: Path) -> None:
    err = load_error(tmp_path / "nope.yaml")
    assert "not found" in str(err) and "nope.yaml" in str(err)


def test_unparsable_yaml_names_the_line_and_not_its_text(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(f"kafka:\n  topics: [a\nmodel: {{name: {SECRET}: x}}\n")
    err = load_error(path)
    assert "cannot parse" in str(err) and "line 3" in str(err)
    assert SECRET not in str(err)


@pytest.mark.parametrize("text", ["- kafka\n- model\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    assert "must be a mapping of sections" in str(load_error(path))


def test_empty_file_reports_the_required_sections(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("# nothing yet\n")
    assert load_error(path).paths == ("kafka", "model")


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "model:\n  name: other\n")
    err = load_error(path)
    assert err.paths == ("model",)
    assert "duplicate key" in str(err)


def test_relative_paths_resolve_against_the_file_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    (conf / "data").mkdir(parents=True)
    (conf / "data" / "ref.npy").write_bytes(b"x")
    (conf / "model.pt").write_bytes(b"x")
    path = write(
        conf,
        merged(MINIMAL, {"model": {"path": "model.pt"}, "reference": {"path": "data/ref.npy"}}),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path("..") / "conf" / "agent.yaml", env={})
    assert cfg.model.path == conf / "model.pt"
    assert cfg.reference.path == conf / "data" / "ref.npy"
    assert load_config(path, env={}).reference.path == conf / "data" / "ref.npy"


def test_missing_relative_path_says_where_it_looked(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, merged(MINIMAL, {"model": {"path": "m.pt"}})))
    assert f"looked for {tmp_path / 'm.pt'}" in str(err)


# ---------------------------------------------------------------------------------------------
# Environment overrides and the overrides argument


def test_env_overrides_are_nested_typed_and_win_over_the_file(tmp_path: Path) -> None:
    data = merged(MINIMAL, {"kafka": {"consumer": {"max_poll_records": 10, "fetch_min_bytes": 2}}})
    env = {
        "ROBUSTWATCH_KAFKA__CONSUMER__MAX_POLL_RECORDS": "50",
        "ROBUSTWATCH_DETECTORS__DRIFT__P_VAL": "0.01",
        "ROBUSTWATCH_DETECTORS__DRIFT__ENABLED": "false",
        "ROBUSTWATCH_KAFKA__TOPICS": "[a, b]",
        "ROBUSTWATCH_KAFKA__BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
        "ROBUSTWATCH_pipeline__Max_Batch_Records": "7",
        "ROBUSTWATCH_LOGGING": "{level: debug}",
    }
    cfg = load_config(write(tmp_path, data), env=env)
    assert cfg.kafka.consumer == {"max_poll_records": 50, "fetch_min_bytes": 2}
    assert cfg.detectors.drift.p_val == 0.01 and cfg.detectors.drift.enabled is False
    assert cfg.kafka.topics == ("a", "b")
    assert cfg.kafka.bootstrap_servers == ("k1:9092", "k2:9092")
    assert cfg.pipeline.max_batch_records == 7
    assert cfg.logging.level == "DEBUG"


def test_overrides_argument_wins_over_env(tmp_path: Path) -> None:
    env = {"ROBUSTWATCH_KAFKA__EMIT": "all", "ROBUSTWATCH_METRICS__PORT": "1"}
    overrides = {"kafka.emit": "flagged", "metrics": {"host": "127.0.0.1"}}
    cfg = load_config(write(tmp_path, MINIMAL), env=env, overrides=overrides)
    assert cfg.kafka.emit == "flagged"
    assert (cfg.metrics.host, cfg.metrics.port) == ("127.0.0.1", 1)


def test_unknown_env_key_names_the_variable(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, MINIMAL), env={"ROBUSTWATCH_KAFKA__TOPIKS": "[a]"})
    assert str(err).startswith("config error at kafka.topiks: ")
    assert "ROBUSTWATCH_KAFKA__TOPIKS" in str(err)
    assert "did you mean 'topics'?" in str(err)


def test_unknown_env_section_and_bad_value_name_the_variable(tmp_path: Path) -> None:
    env = {"ROBUSTWATCH_KAFAK__TOPICS": "a", "ROBUSTWATCH_METRICS__PORT": "http"}
    lines = str(load_error(write(tmp_path, MINIMAL), env=env)).splitlines()
    assert any("ROBUSTWATCH_KAFAK__TOPICS" in line and "kafak" in line for line in lines)
    assert any(
        line.startswith("config error at metrics.port: ")
        and "got 'http'" in line
        and "ROBUSTWATCH_METRICS__PORT" in line
        for line in lines
    )


def test_malformed_env_name_is_an_error(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, MINIMAL), env={"ROBUSTWATCH_KAFKA____EMIT": "all"})
    assert "ROBUSTWATCH_KAFKA____EMIT" in str(err)


def test_config_file_from_env_and_other_variables_ignored(tmp_path: Path) -> None:
    env = {"ROBUSTWATCH_CONFIG": str(write(tmp_path, MINIMAL)), "HOME": "/x", "robustwatch_x": "1"}
    assert load_config(env=env).model.name == "digits"


def test_no_file_at_all_needs_env_for_required_keys() -> None:
    env = {
        "ROBUSTWATCH_KAFKA__BOOTSTRAP_SERVERS": "k:9092",
        "ROBUSTWATCH_KAFKA__TOPICS": "t",
        "ROBUSTWATCH_MODEL__NAME": "m",
    }
    assert load_config(env=env).kafka.topics == ("t",)
    with pytest.raises(ConfigError, match="config error at kafka: missing required key"):
        load_config(env={})


def test_config_from_dict_ignores_robustwatch_env() -> None:
    cfg = config_from_dict(MINIMAL, env={"ROBUSTWATCH_KAFKA__EMIT": "bogus"})
    assert cfg.kafka.emit == "flagged"
    with pytest.raises(ConfigError, match="expected a mapping"):
        config_from_dict(["kafka"], env={})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Secrets


def test_password_from_env_never_shows(tmp_path: Path) -> None:
    security = {**SASL, "sasl_password_env": "KAFKA_PASSWORD"}
    path = write(tmp_path, merged(MINIMAL, {"kafka": {"security": security}}))
    cfg = load_config(path, env={"KAFKA_PASSWORD": SECRET})
    for text in (repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump())):
        assert SECRET not in text
    assert SECRET not in repr(cfg.kafka.security.sasl_password)
    assert cfg.kafka.security.client_kwargs() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "u",
        "sasl_plain_password": SECRET,
    }


def test_password_env_named_like_an_override_is_not_one(tmp_path: Path) -> None:
    security = {**SASL, "sasl_password_env": "ROBUSTWATCH_KAFKA_PASSWORD"}
    path = write(tmp_path, merged(MINIMAL, {"kafka": {"security": security}}))
    cfg = load_config(path, env={"ROBUSTWATCH_KAFKA_PASSWORD": SECRET})
    assert cfg.kafka.security.sasl_password.get_secret_value() == SECRET


def test_password_file_never_shows_even_with_other_errors(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET + "\r\n")
    security = {**SASL, "sasl_password_file": "pw"}
    path = write(tmp_path, merged(MINIMAL, {"kafka": {"security": security}}))
    cfg = load_config(path, env={})
    assert cfg.kafka.security.sasl_password.get_secret_value() == SECRET
    assert SECRET not in repr(cfg) + cfg.model_dump_json()
    err = load_error(path, env={"ROBUSTWATCH_METRICS__PORT": "-1"})
    assert SECRET not in str(err) and "metrics.port" in str(err)


def test_empty_password_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    security = {**SASL, "sasl_password_file": "pw"}
    err = load_error(write(tmp_path, merged(MINIMAL, {"kafka": {"security": security}})))
    assert str(err).startswith("config error at kafka.security.sasl_password_file: ")


def test_ssl_client_kwargs(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    security = KafkaSecurity.model_validate(
        {
            "protocol": "SSL",
            "ssl_cafile": "ca.pem",
            "ssl_certfile": "cert.pem",
            "ssl_keyfile": "key.pem",
        },
        context={"base_dir": tmp_path},
    )
    assert security.client_kwargs() == {
        "security_protocol": "SSL",
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(tmp_path / "cert.pem"),
        "ssl_keyfile": str(tmp_path / "key.pem"),
    }

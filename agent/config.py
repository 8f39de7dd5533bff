"""Agent configuration: a YAML file validated with pydantic, with environment overrides.

The file holds one mapping per section: ``kafka``, ``model``, ``reference``, ``detectors``,
``pipeline``, ``metrics`` and ``logging``. Each section class below documents its keys and
``examples/agent.yaml`` is an annotated example. Only ``kafka`` and ``model`` are required.

Values come from, lowest precedence first:

1. the YAML file; relative paths in it are resolved against the file's directory;
2. environment variables ``ROBUSTWATCH_<SECTION>__<KEY>[__<KEY>...]``, such as
   ``ROBUSTWATCH_KAFKA__CONSUMER__MAX_POLL_RECORDS=50``. The key part is case-insensitive and
   the value is read as a YAML scalar or flow collection (``5``, ``0.01``, ``true``,
   ``[a, b]``). ``ROBUSTWATCH_CONFIG`` is no override: it names the file when none is given;
3. the ``overrides`` argument of :func:`load_config`, keyed by dotted paths.

Every problem becomes one line of a :class:`~agent.exceptions.ConfigError` that names its key
path. Passwords are never written in the file: ``kafka.security`` names an environment variable
or a file holding one, and the value read is kept in a :class:`pydantic.SecretStr` that appears
in no repr, dump or error message.

Examples
--------
>>> cfg = config_from_dict(
...     {"kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
...      "model": {"name": "digits"}}, env={})
>>> cfg.kafka.bootstrap_servers, cfg.kafka.topics
(('localhost:9092',), ('inference',))
>>> cfg.detectors.drift.p_val
0.05
>>> try:
...     config_from_dict({"kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
...                       "model": {"name": "digits"}, "detectors": {"drift": {"p_val": 1.5}}},
...                      env={})
... except ConfigError as err:
...     print(err)
config error at detectors.drift.p_val: expected a float in (0, 1), got 1.5
"""

import copy
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agent.exceptions import ConfigError

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_PREFIX",
    "AgentConfig",
    "ConfigError",
    "DetectorsConfig",
    "DriftConfig",
    "KafkaConfig",
    "KafkaSecurity",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "PipelineConfig",
    "ReferenceConfig",
    "config_from_dict",
    "load_config",
]

ENV_PREFIX = "ROBUSTWATCH_"
CONFIG_ENV_VAR = "ROBUSTWATCH_CONFIG"  # names the config file; not an override

# --------------------------------------------------------------------------------------------
# Error plumbing. Validators raise one PydanticCustomError of type _ERROR_TYPE carrying a list
# of _Issue, each relative to the validator's location; _issues() turns those, and pydantic's
# own errors, into the lines of a ConfigError.

_ERROR_TYPE = "robustwatch_config"
_HIDDEN: Any = object()  # an issue's `got` when the input must not be shown


class _Issue(NamedTuple):
    key: str  # dotted path below the validator's location; "" for the location itself
    message: str
    got: Any = _HIDDEN
    note: str = ""  # said after `got`, in parentheses


class _Expect:
    """Field metadata: what a valid value looks like, in plain words, for error messages."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _problems(*issues: _Issue) -> PydanticCustomError:
    return PydanticCustomError(
        _ERROR_TYPE, "{summary}", {"summary": issues[0].message, "issues": list(issues)}
    )


def _context(info: ValidationInfo | None) -> Mapping[str, Any]:
    return (info.context if info is not None else None) or {}


# --------------------------------------------------------------------------------------------
# Small validators and the field types built from them.


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic's lax mode would read true as 1
        raise PydanticCustomError("bool_for_number", "a boolean is not a number")
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _log_level(value: Any) -> Any:
    value = _upper(value)
    return "WARNING" if value == "WARN" else value


def _int_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]{1,249}")
_TOPIC_RULE = "a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not '.' or '..')"


def _topic_name(value: str) -> str:
    if not _TOPIC_RE.fullmatch(value) or value in (".", ".."):
        raise _problems(_Issue("", f"expected {_TOPIC_RULE}", value))
    return value


def _resolve(path: Path, info: ValidationInfo | None) -> Path:
    base = _context(info).get("base_dir") or Path.cwd()
    return Path(os.path.abspath(Path(base) / path.expanduser()))


def _path(value: Path | None, info: ValidationInfo) -> Path | None:
    return None if value is None else _resolve(value, info)


def _existing_file(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    resolved = _resolve(value, info)
    if not resolved.is_file():
        note = "" if resolved == value else f"looked for {resolved}"
        raise _problems(_Issue("", "expected an existing file", str(value), note))
    return resolved


def _reference_file(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is not None and value.suffix.lower() not in (".npz", ".npy"):
        raise _problems(_Issue("", "expected a .npz or .npy file", str(value)))
    return _existing_file(value, info)


_Int = Annotated[int, BeforeValidator(_no_bool)]
_Float = Annotated[float, BeforeValidator(_no_bool)]
_PositiveInt = Annotated[_Int, Field(gt=0), _Expect("a positive integer")]
_PositiveFloat = Annotated[_Float, Field(gt=0), _Expect("a positive number")]
_Text = Annotated[str, Field(min_length=1), _Expect("a non-empty string")]
_OptText = Annotated[str | None, Field(min_length=1), _Expect("a non-empty string")]
_Topic = Annotated[str, AfterValidator(_topic_name), _Expect(_TOPIC_RULE)]
_OptPath = Annotated[Path | None, AfterValidator(_path), _Expect("a file path")]
_OptFile = Annotated[
    Path | None, AfterValidator(_existing_file), _Expect("the path of an existing file")
]

# --------------------------------------------------------------------------------------------
# kafka.bootstrap_servers and kafka.topics: a comma-separated string or a list.

_SERVER_RE = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def _items(value: Any, what: str) -> tuple[list[Any], bool]:
    """Split a comma-separated string or accept a list; say whether items have indices."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
        return items, len(items) > 1
    if isinstance(value, list | tuple):
        return list(value), True
    raise _problems(_Issue("", f"expected {what}", value))


def _servers(value: Any) -> tuple[str, ...]:
    items, indexed = _items(value, "a 'host:port' string or a list of them")
    issues = []
    for i, item in enumerate(items):
        match = _SERVER_RE.fullmatch(item) if isinstance(item, str) else None
        if match is None or not 1 <= int(match.group(1)) <= 65535:
            key = str(i) if indexed else ""
            issues.append(_Issue(key, "expected host:port with a port from 1 to 65535", item))
    if not items:
        issues.append(_Issue("", "expected at least one host:port", value))
    if issues:
        raise _problems(*issues)
    return tuple(items)


def _topics(value: Any) -> tuple[str, ...]:
    items, indexed = _items(value, "a topic name or a list of them")
    issues, first_seen = [], {}
    for i, item in enumerate(items):
        key = str(i) if indexed else ""
        if not isinstance(item, str) or not _TOPIC_RE.fullmatch(item) or item in (".", ".."):
            issues.append(_Issue(key, f"expected {_TOPIC_RULE}", item))
        elif item in first_seen:
            issues.append(_Issue(key, f"duplicate of kafka.topics.{first_seen[item]}", item))
        else:
            first_seen[item] = i
    if not items:
        issues.append(_Issue("", "expected at least one topic", value))
    if issues:
        raise _problems(*issues)
    return tuple(items)


# --------------------------------------------------------------------------------------------
# kafka.consumer and kafka.producer: pass-through settings for kafka-python, checked against
# its DEFAULT_CONFIG tables; the agent keeps the settings its guarantees depend on.

_SECURITY_KEYS = (
    "protocol, ssl_cafile, ssl_certfile, ssl_keyfile, sasl_mechanism, sasl_username, "
    "sasl_password_env, sasl_password_file"
)
_DECODES = "is set by the agent, which decodes records itself (see kafka.format)"
_ENCODES = "is set by the agent, which encodes its result and dead-letter records itself"
_OWNED = {
    "bootstrap_servers": "is set by the agent; use kafka.bootstrap_servers",
    "client_id": "is set by the agent; use kafka.client_id",
    "group_id": "is set by the agent; use kafka.group_id",
    "group_instance_id": "is set by the agent; use kafka.group_instance_id",
    "enable_auto_commit": "is set by the agent, which commits an offset only after its "
    "batch's results are acknowledged (at-least-once)",
    "key_deserializer": _DECODES,
    "value_deserializer": _DECODES,
    "key_serializer": _ENCODES,
    "value_serializer": _ENCODES,
    "security_protocol": "is set by the agent; use kafka.security.protocol",
    "sasl_plain_username": "is set by the agent; use kafka.security.sasl_username",
    "sasl_plain_password": "is set by the agent; use kafka.security.sasl_password_env "
    "or kafka.security.sasl_password_file",
    "transactional_id": "is not supported: the agent does not use Kafka transactions",
}
_CHOICES = {
    ("consumer", "auto_offset_reset"): ("earliest", "latest", "none"),
    ("consumer", "isolation_level"): ("read_uncommitted", "read_committed"),
}
_ACKS_ZERO = (
    "acks=0 means no acknowledgement, so the agent could commit offsets for results that were "
    "never written; use 'all' (the default) or 1"
)


def _kafka_defaults(client: str) -> Mapping[str, Any] | None:
    try:
        import kafka
    except ImportError:  # the names cannot be checked; kafka-python will check them itself
        return None
    return (kafka.KafkaConsumer if client == "consumer" else kafka.KafkaProducer).DEFAULT_CONFIG


def _refusal(key: str) -> str | None:
    if key in _OWNED:
        return _OWNED[key]
    if key.startswith(("ssl_", "sasl_")):
        if key in KafkaSecurity.model_fields:
            return f"is set by the agent; use kafka.security.{key}"
        return f"is not supported; TLS and SASL are set in kafka.security ({_SECURITY_KEYS})"
    return None


def _setting_value(client: str, key: str, value: Any, default: Any) -> tuple[Any, str | None]:
    """Check one pass-through value against the type of kafka-python's default."""
    if client == "producer" and key == "acks":
        if value in (0, "0"):
            return value, _ACKS_ZERO
        if isinstance(value, bool) or value not in ("all", -1, "-1", 1, "1"):
            return value, "expected 'all', -1 or 1"
        return (value if value == "all" else int(value)), None
    if (client, key) in _CHOICES:
        choices = _CHOICES[client, key]
        return value, None if value in choices else "expected one of " + ", ".join(choices)
    if key == "api_version" and isinstance(value, list | tuple):
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return tuple(value), None if ok else "expected a version such as [2, 8]"
    if isinstance(default, bool):
        return value, None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int | float):
        number = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        whole = isinstance(default, float) or isinstance(value, int)
        return value, None if number and whole else "expected a number >= 0"
    if isinstance(default, str):
        return value, None if isinstance(value, str) else "expected a string"
    ok = isinstance(value, str | int | float | bool)
    return value, None if ok else "expected a single value"


def _client_settings(client: str) -> Any:
    kind = "KafkaConsumer" if client == "consumer" else "KafkaProducer"
    docs = f"https://kafka-python.readthedocs.io/en/master/apidoc/{kind}.html"

    def check(settings: dict[str, Any]) -> dict[str, Any]:
        defaults = _kafka_defaults(client)
        issues, out = [], {}
        for key, value in settings.items():
            if not isinstance(key, str):
                issues.append(_Issue(str(key), "expected a setting name", key))
            elif (refusal := _refusal(key)) is not None:
                issues.append(_Issue(key, refusal, value))
            elif defaults is not None and key not in defaults:
                close = difflib.get_close_matches(key, list(defaults), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                issues.append(_Issue(key, f"unknown {kind} setting{hint}; see {docs}"))
            elif defaults is not None and not isinstance(
                defaults[key], NoneType | bool | int | float | str
            ):
                issues.append(_Issue(key, "takes a Python object, which a config cannot give"))
            else:
                default = None if defaults is None else defaults[key]
                out[key], problem = _setting_value(client, key, value, default)
                if problem:
                    issues.append(_Issue(key, problem, value))
        acks = out.get("acks", "all")
        if out.get("enable_idempotence") is True and acks not in ("all", -1):
            issues.append(_Issue("acks", "enable_idempotence needs acks 'all'", out["acks"]))
        if issues:
            raise _problems(*issues)
        return out

    return check


# --------------------------------------------------------------------------------------------
# The sections.


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) in (Union, UnionType):
        found = [_submodel(arg) for arg in get_args(annotation)]
        return next((model for model in found if model is not None), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        """A section or mapping left empty in YAML (``metrics:``) reads as null: use defaults."""
        if not isinstance(data, Mapping):
            return data
        return {k: v for k, v in data.items() if not (v is None and cls._has_default_mapping(k))}

    @classmethod
    def _has_default_mapping(cls, key: str) -> bool:
        info = cls.model_fields.get(key)
        if info is None or info.is_required():
            return False
        return _submodel(info.annotation) is not None or get_origin(info.annotation) is dict


class KafkaSecurity(_Section):
    """How the agent authenticates to Kafka: ``kafka.security``.

    Passwords are never written in the config; name an environment variable or a file that
    holds one. The password read is kept in :attr:`sasl_password` and never shown.

    Attributes
    ----------
    protocol : {'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'}, default 'PLAINTEXT'
        The Kafka security protocol.
    ssl_cafile, ssl_certfile, ssl_keyfile : path, optional
        CA bundle, client certificate and its private key (PEM). Each must exist and needs
        protocol SSL or SASL_SSL; ``ssl_keyfile`` needs ``ssl_certfile``.
    sasl_mechanism : {'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'}, optional
        Required when protocol is SASL_PLAINTEXT or SASL_SSL.
    sasl_username : str, optional
        Required with SASL.
    sasl_password_env : str, optional
        The name of the environment variable that holds the SASL password.
    sasl_password_file : path, optional
        A file that holds the SASL password (a trailing newline is dropped). With SASL, exactly
        one of ``sasl_password_env`` and ``sasl_password_file`` is required.
    """

    protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
    ] = "PLAINTEXT"
    ssl_cafile: _OptFile = None
    ssl_certfile: _OptFile = None
    ssl_keyfile: _OptFile = None
    sasl_mechanism: Annotated[
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None, BeforeValidator(_upper)
    ] = None
    sasl_username: _OptText = None
    sasl_password_env: Annotated[
        str | None,
        Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
        _Expect("the name of an environment variable"),
    ] = None
    sasl_password_file: _OptPath = None
    _sasl_password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "KafkaSecurity":
        issues = []
        ssl_keys = [k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, k)]
        sasl_keys = [
            k for k in type(self).model_fields if k.startswith("sasl_") and getattr(self, k)
        ]
        if self.protocol not in ("SSL", "SASL_SSL"):
            need = f"needs protocol SSL or SASL_SSL, but protocol is {self.protocol}"
            issues += [_Issue(key, need) for key in ssl_keys]
        if self.ssl_keyfile and not self.ssl_certfile:
            issues.append(_Issue("ssl_certfile", "required when ssl_keyfile is set"))
        if not self.protocol.startswith("SASL_"):
            need = f"needs protocol SASL_PLAINTEXT or SASL_SSL, but protocol is {self.protocol}"
            issues += [_Issue(key, need) for key in sasl_keys]
        else:
            required = f"required when protocol is {self.protocol}"
            if self.sasl_mechanism is None:
                choices = "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                issues.append(_Issue("sasl_mechanism", f"{required}; expected {choices}"))
            if self.sasl_username is None:
                issues.append(_Issue("sasl_username", required))
            if self.sasl_password_env and self.sasl_password_file:
                issues.append(
                    _Issue(
                        "sasl_password_env",
                        "set only one of sasl_password_env and sasl_password_file",
                    )
                )
            else:
                password, issue = self._read_password(_context(info).get("env", os.environ))
                issues += [issue] if issue else []
                self._sasl_password = password
        if issues:
            raise _problems(*issues)
        return self

    def _read_password(self, env: Mapping[str, str]) -> tuple[SecretStr | None, _Issue | None]:
        # Neither the variable's name nor the file's path is echoed: users do put the password
        # itself where its name belongs.
        if self.sasl_password_env:
            value = env.get(self.sasl_password_env)
            if not value:
                return None, _Issue("sasl_password_env", "names an unset or empty variable")
            return SecretStr(value), None
        if self.sasl_password_file:
            try:
                value = self.sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except FileNotFoundError:
                return None, _Issue("sasl_password_file", "names a file that does not exist")
            except (OSError, UnicodeError) as exc:
                return None, _Issue("sasl_password_file", f"cannot be read ({type(exc).__name__})")
            if not value:
                return None, _Issue("sasl_password_file", "names an empty file")
            return SecretStr(value), None
        return None, _Issue(
            "sasl_password_env",
            f"required when protocol is {self.protocol}: set sasl_password_env (the name of an "
            "environment variable) or sasl_password_file (a file holding the password)",
        )

    @property
    def sasl_password(self) -> SecretStr | None:
        """The SASL password read from the environment or a file; None without SASL."""
        return self._sasl_password

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaConsumer and KafkaProducer.

        The result holds the password in clear, as kafka-python needs it: never log it.

        Examples
        --------
        >>> KafkaSecurity().client_kwargs()
        {'security_protocol': 'PLAINTEXT'}
        """
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key) is not None:
                kwargs[key] = str(getattr(self, key))
        if self.protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            if self._sasl_password is not None:
                kwargs["sasl_plain_password"] = self._sasl_password.get_secret_value()
        return kwargs


class KafkaConfig(_Section):
    """Where inference traffic comes from and where results go: ``kafka``.

    Attributes
    ----------
    bootstrap_servers : tuple of str, required
        Brokers as ``"h1:9092,h2:9092"`` or a list; each must be ``host:port``.
    topics : tuple of str, required
        Input topics: a name or a list of names (``[A-Za-z0-9._-]{1,249}``), no duplicates.
    group_id : str, default 'robustwatch'
        Consumer group; workers with the same group share the topics' partitions.
    group_instance_id : str, optional
        Static group membership (KIP-345): a restart within the session timeout keeps the
        worker's partitions. Give each worker its own, such as the pod name.
    client_id : str, default 'robustwatch'
        Client id reported to the brokers.
    format : {'auto', 'oip-json', 'kserve-cloudevents', 'plain-json'}, default 'auto'
        How records are decoded; ``auto`` sniffs each record.
    dead_letter_topic : str, default 'robustwatch.dead-letters'
        Where records that cannot be decoded go, with the reason in their headers.
    results_topic : str, default 'robustwatch.results'
        Where result records go. It, ``dead_letter_topic`` and the input topics all differ.
    emit : {'flagged', 'all'}, default 'flagged'
        Write results for flagged events only, or for every event.
    max_record_bytes : int, default 16777216 (16 MiB)
        Larger records are sent to the dead-letter topic undecoded.
    client_id_header : str, default 'client-id'
        The Kafka header that names the calling client (for stateful query detection).
    join_ttl_seconds : float, default 60.0
        How long a KServe CloudEvent request waits for its response (and back), > 0.
    max_pending_joins : int, default 10000
        At most this many unjoined KServe events are held; the oldest are dropped first.
    consumer : mapping, default {}
        Settings handed to kafka-python's ``KafkaConsumer`` (``max_poll_interval_ms``,
        ``session_timeout_ms``, ``max_poll_records``, ``fetch_max_bytes``,
        ``auto_offset_reset`` and so on). The agent uses ``auto_offset_reset: earliest`` unless
        it is set here. Keys the agent owns are refused: servers, group and client ids,
        ``enable_auto_commit``, deserializers and every security key (see ``security``).
    producer : mapping, default {}
        Settings handed to ``KafkaProducer`` (``linger_ms``, ``compression_type``, ...), with
        the same refusals; ``acks`` may be 'all' (the default), -1 or 1, never 0.
    security : KafkaSecurity
        TLS and SASL; see :class:`KafkaSecurity`.
    """

    bootstrap_servers: Annotated[tuple[str, ...], BeforeValidator(_servers)]
    topics: Annotated[tuple[str, ...], BeforeValidator(_topics)]
    group_id: _Text = "robustwatch"
    group_instance_id: _OptText = None
    client_id: _Text = "robustwatch"
    format: Annotated[
        Literal["auto", "oip-json", "kserve-cloudevents", "plain-json"], BeforeValidator(_lower)
    ] = "auto"
    dead_letter_topic: _Topic = "robustwatch.dead-letters"
    results_topic: _Topic = "robustwatch.results"
    emit: Annotated[Literal["flagged", "all"], BeforeValidator(_lower)] = "flagged"
    max_record_bytes: _PositiveInt = 16 * 1024 * 1024
    client_id_header: _Text = "client-id"
    join_ttl_seconds: _PositiveFloat = 60.0
    max_pending_joins: _PositiveInt = 10_000
    consumer: Annotated[dict[str, Any], AfterValidator(_client_settings("consumer"))] = Field(
        default_factory=dict
    )
    producer: Annotated[dict[str, Any], AfterValidator(_client_settings("producer"))] = Field(
        default_factory=dict
    )
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)

    @model_validator(mode="after")
    def _check_topics(self) -> "KafkaConfig":
        issues = []
        for key in ("dead_letter_topic", "results_topic"):
            topic = getattr(self, key)
            if topic in self.topics:
                issues.append(_Issue(key, "must differ from the input topics", topic))
        if self.results_topic == self.dead_letter_topic:
            message = "must differ from kafka.dead_letter_topic"
            issues.append(_Issue("results_topic", message, self.results_topic))
        if issues:
            raise _problems(*issues)
        return self


class ModelConfig(_Section):
    """The model being watched: ``model``.

    Attributes
    ----------
    name : str, required
        The model's name, as in the events and the metrics' ``model`` label.
    version : str, optional
        Its version; an integer is read as a string, other numbers must be quoted.
    path : path, optional
        The model file (TorchScript or ``.pt2``) that detectors needing the model use; must
        exist.
    """

    name: _Text
    version: Annotated[
        str | None,
        BeforeValidator(_int_to_str),
        Field(min_length=1),
        _Expect('a non-empty string (quote numbers: "1.10")'),
    ] = None
    path: _OptFile = None


class ReferenceConfig(_Section):
    """Reference data that detectors are fitted on: ``reference``.

    Attributes
    ----------
    path : path, optional
        A ``.npz`` (with ``x``) or ``.npy`` file; must exist.
    """

    path: Annotated[
        Path | None, AfterValidator(_reference_file), _Expect("an existing .npz or .npy file")
    ] = None


class DriftConfig(_Section):
    """The batch drift detector: ``detectors.drift``.

    Attributes
    ----------
    enabled : bool, default true
    window : int, default 200
        Events per test window, >= 10.
    p_val : float, default 0.05
        Significance level of the test, in (0, 1).
    correction : {'bonferroni', 'fdr'}, default 'bonferroni'
        Multiple-testing correction across features.
    """

    enabled: bool = True
    window: Annotated[_Int, Field(ge=10), _Expect("an integer >= 10")] = 200
    p_val: Annotated[_Float, Field(gt=0, lt=1), _Expect("a float in (0, 1)")] = 0.05
    correction: Annotated[Literal["bonferroni", "fdr"], BeforeValidator(_lower)] = "bonferroni"


class DetectorsConfig(_Section):
    """Which detectors run on the traffic: ``detectors``.

    Attributes
    ----------
    drift : DriftConfig
        See :class:`DriftConfig`.
    """

    drift: DriftConfig = Field(default_factory=DriftConfig)


class PipelineConfig(_Section):
    """Batching, back-pressure and lifecycle: ``pipeline``.

    Attributes
    ----------
    max_batch_records : int, default 500
        Records taken per poll, >= 1.
    max_inflight_batches : int, default 4
        Batches produced but not yet acknowledged before the consumer pauses its partitions.
    poll_timeout_ms : int, default 100
        How long a poll waits for records, >= 1.
    shutdown_timeout_seconds : float, default 10.0
        How long a graceful stop may take to finish and commit in-flight batches, > 0.
    startup_retry_max_seconds : float, default 300.0
        How long to keep retrying an unreachable broker at start, with exponential backoff;
        0 gives up at once.
    commit_interval_seconds : float, default 1.0
        Least time between two offset commits, >= 0 (0: after every acknowledged batch).
        Committing less often costs nothing in safety (only acknowledged work is ever
        committed) but means more records read again after a crash.
    """

    max_batch_records: _PositiveInt = 500
    max_inflight_batches: _PositiveInt = 4
    poll_timeout_ms: _PositiveInt = 100
    shutdown_timeout_seconds: _PositiveFloat = 10.0
    startup_retry_max_seconds: Annotated[_Float, Field(ge=0), _Expect("a number >= 0")] = 300.0
    commit_interval_seconds: Annotated[_Float, Field(ge=0), _Expect("a number >= 0")] = 1.0


class MetricsConfig(_Section):
    """The Prometheus endpoint: ``metrics``.

    Attributes
    ----------
    host : str, default '0.0.0.0'
        Address to listen on.
    port : int, default 9108
        Port to listen on, 0 to 65535; 0 picks a free port.
    """

    host: _Text = "0.0.0.0"
    port: Annotated[_Int, Field(ge=0, le=65535), _Expect("an integer from 0 to 65535")] = 9108


class LoggingConfig(_Section):
    """The agent's logs: ``logging``.

    Attributes
    ----------
    level : {'DEBUG', 'INFO', 'WARNING', 'ERROR'}, default 'INFO'
        Case-insensitive; ``WARN`` reads as ``WARNING``.
    format : {'text', 'json'}, default 'text'
        ``json`` writes one object per line.
    """

    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_log_level)] = (
        "INFO"
    )
    format: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = "text"


class AgentConfig(_Section):
    """The whole agent configuration; build it with :func:`load_config`.

    Attributes
    ----------
    kafka : KafkaConfig, required
    model : ModelConfig, required
    reference : ReferenceConfig
    detectors : DetectorsConfig
    pipeline : PipelineConfig
    metrics : MetricsConfig
    logging : LoggingConfig
    """

    kafka: KafkaConfig
    model: ModelConfig
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


# --------------------------------------------------------------------------------------------
# Turning pydantic's errors into ConfigError lines.

_KeyPath = tuple[str | int, ...]


@dataclass
class _Origin:
    """Where each value came from: a line of the file, an environment variable, an override."""

    file: str | None = None
    lines: dict[_KeyPath, int] = field(default_factory=dict)
    sources: dict[_KeyPath, str] = field(default_factory=dict)

    def describe(self, path: _KeyPath) -> str | None:
        for n in range(len(path), 0, -1):
            if path[:n] in self.sources:
                return self.sources[path[:n]]
            if path[:n] in self.lines:
                return f"{self.file}:{self.lines[path[:n]]}"
        # An unknown key that only an override brought in: name that override.
        below = [label for key, label in self.sources.items() if key[: len(path)] == path]
        return below[0] if below else None


def _field_at(path: _KeyPath) -> Any:
    """The FieldInfo of the last section key in ``path`` (list indices skipped), or None."""
    model: type[BaseModel] | None = AgentConfig
    info = None
    for part in path:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        model = _submodel(info.annotation)
    return info


def _expected(info: Any) -> str | None:
    expects = [m.text for m in info.metadata if isinstance(m, _Expect)]
    if expects:
        return expects[0]
    annotation = info.annotation
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(a for a in get_args(annotation) if a is not NoneType)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(annotation))
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return words.get(annotation) or ("a mapping" if get_origin(annotation) is dict else None)


def _unknown_key(path: _KeyPath) -> str:
    model: type[BaseModel] | None = AgentConfig
    if len(path) > 1:
        info = _field_at(path[:-1])
        model = _submodel(info.annotation) if info is not None else None
    key = path[-1]
    what = "unknown section" if len(path) == 1 else "unknown key"
    if model is None:
        return f"{what} {key!r}"
    valid = list(model.model_fields)
    if model is KafkaSecurity and "password" in str(key).lower():
        return (
            f"{what} {key!r}: passwords are never written in the config; name an environment "
            "variable in sasl_password_env or a file in sasl_password_file"
        )
    close = difflib.get_close_matches(str(key).lower(), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{what} {key!r}{hint}; valid keys: {', '.join(valid)}"


def _issues(exc: ValidationError) -> list[tuple[_KeyPath, _Issue]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == _ERROR_TYPE:
            for issue in err["ctx"]["issues"]:
                keys = [int(k) if k.isdigit() else k for k in issue.key.split(".") if k]
                out.append((loc + tuple(keys), issue))
        elif kind == "missing":
            out.append((loc, _Issue("", "missing required key")))
        elif kind == "extra_forbidden":
            out.append((loc, _Issue("", _unknown_key(loc))))
        else:
            info = _field_at(loc)
            mapping = kind in ("model_type", "model_attributes_type", "dict_type")
            expected = "a mapping" if mapping else (_expected(info) if info else None)
            text = f"expected {expected}" if expected else err["msg"][:1].lower() + err["msg"][1:]
            out.append((loc, _Issue("", text, err.get("input", _HIDDEN))))
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _line(path: _KeyPath, issue: _Issue, origin: _Origin) -> str:
    dotted = ".".join(str(part) for part in path)
    text = f"config error at {dotted}: " if dotted else "config error: "
    text += issue.message
    secret = any("password" in str(part).lower() for part in path)
    if issue.got is not _HIDDEN and not secret:
        text += f", got {_show(issue.got)}"
    if issue.note:
        text += f" ({issue.note})"
    source = origin.describe(path)
    return text + (f" [{source}]" if source else "")


def _config_error(problems: list[tuple[_KeyPath, _Issue]], origin: _Origin) -> ConfigError:
    lines = [_line(path, issue, origin) for path, issue in problems]
    paths = [".".join(str(part) for part in path) for path, _ in problems]
    return ConfigError(lines, paths=paths)


# --------------------------------------------------------------------------------------------
# Reading the file, the environment and the overrides.


def _read_yaml(path: Path, origin: _Origin) -> tuple[dict[str, Any], list[tuple[_KeyPath, _Issue]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config error: config file not found: {path}", paths=[""]) from None
    except IsADirectoryError:
        raise ConfigError(f"config error: config file is a directory: {path}", paths=[""]) from None
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"config error: cannot read {path}: {reason}", paths=[""]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        # Only the problem and its position: the snippet of the line might hold a secret.
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"config error: cannot parse {path}{where}: {what}", paths=[""]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config error: cannot parse {path}: {type(exc).__name__}", paths=[""]
        ) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config error: the top level of {path} must be a mapping of sections "
            f"({', '.join(AgentConfig.model_fields)}), got a {type(data).__name__}",
            paths=[""],
        )
    duplicates: list[tuple[_KeyPath, _Issue]] = []
    if node is not None:
        _index(node, (), origin.lines, duplicates, set())
    return data, duplicates


def _index(node: Any, path: _KeyPath, lines: dict, duplicates: list, active: set) -> None:
    """Record the line of every key and list item below ``node``; report duplicate keys."""
    if id(node) in active:  # a recursive alias
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key_path = (*path, key_node.value)
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                issue = _Issue("", f"duplicate key, given again at line {line}")
                duplicates.append((key_path, issue))
            seen.add(key_node.value)
            lines.setdefault(key_path, line)
            _index(value_node, key_path, lines, duplicates, active)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, duplicates, active)
    active.discard(id(node))


def _merge(old: Any, new: Any) -> Any:
    if isinstance(new, Mapping):
        merged = dict(old) if isinstance(old, Mapping) else {}
        for key, value in new.items():
            merged[key] = _merge(merged.get(key), value)
        return merged
    return new


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = _merge(node.get(path[-1]), value)


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _env_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _apply_env(
    data: dict[str, Any], env: Mapping[str, str], overrides: list, origin: _Origin
) -> list[tuple[_KeyPath, _Issue]]:
    password_path = ("kafka", "security", "sasl_password_env")
    entries, problems = [], []
    for name in env:
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV_VAR:
            continue
        parts = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        if not all(parts):
            message = (
                f"environment variable {name} is not a config override; expected "
                f"{ENV_PREFIX}<SECTION>__<KEY>, such as {ENV_PREFIX}KAFKA__TOPICS"
            )
            problems.append(((), _Issue("", message)))
        else:
            entries.append((parts, _env_value(env[name]), name))
    # A password variable named like an override is the password, not an override.
    named = [v for p, v, _ in overrides if p == password_path]
    named += [v for p, v, _ in entries if p == password_path] + [_get(data, password_path)]
    password_var = next((v for v in named if isinstance(v, str)), None)
    for parts, value, name in sorted(entries, key=lambda e: (len(e[0]), e[2])):
        if name != password_var:
            _set(data, parts, value)
            origin.sources[parts] = f"environment variable {name}"
    return problems


def _flat_overrides(overrides: Mapping[str, Any] | None) -> list:
    return [
        (tuple(str(key).split(".")), value, f"overrides[{str(key)!r}]")
        for key, value in (overrides or {}).items()
    ]


def _build(
    data: dict[str, Any], env: Mapping[str, str], base_dir: Path, origin: _Origin, problems: list
) -> AgentConfig:
    try:
        config = AgentConfig.model_validate(data, context={"env": env, "base_dir": base_dir})
    except ValidationError as exc:
        # Not chained: a ValidationError's text shows the input values, secrets included.
        raise _config_error(problems + _issues(exc), origin) from None
    if problems:
        raise _config_error(problems, origin)
    return config


# --------------------------------------------------------------------------------------------
# The public functions.


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AgentConfig:
    """Read, merge and validate the agent's configuration.

    Parameters
    ----------
    path : str or path-like, optional
        The YAML file. Without it, the file named by ``ROBUSTWATCH_CONFIG`` is read, or none:
        then the environment and ``overrides`` must give every required key, and relative paths
        are resolved against the working directory.
    env : mapping, optional
        The environment (default ``os.environ``): ``ROBUSTWATCH_*`` overrides, and the variable
        that ``kafka.security.sasl_password_env`` names.
    overrides : mapping, optional
        Values that win over the file and the environment, keyed by dotted path
        (``{"kafka.emit": "all"}``); a mapping value is merged into what is there.

    Returns
    -------
    AgentConfig

    Raises
    ------
    ConfigError
        For a missing or unreadable file, bad YAML, or any invalid value; one line per problem,
        each naming its key path and where the value came from.
    """
    env = os.environ if env is None else env
    if path is None and env.get(CONFIG_ENV_VAR):
        path = env[CONFIG_ENV_VAR]
    origin = _Origin()
    data: dict[str, Any] = {}
    problems: list[tuple[_KeyPath, _Issue]] = []
    base_dir = Path.cwd()
    if path is not None:
        file = Path(path).expanduser()
        origin.file = str(path)
        data, problems = _read_yaml(file, origin)
        base_dir = Path(os.path.abspath(file)).parent
    data = copy.deepcopy(data)
    flat = _flat_overrides(overrides)
    problems += _apply_env(data, env, flat, origin)
    for parts, value, label in flat:
        _set(data, parts, value)
        origin.sources[parts] = label
    return _build(data, env, base_dir, origin, problems)


def config_from_dict(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> AgentConfig:
    """Validate a configuration given as a mapping, as it would appear in the YAML file.

    No ``ROBUSTWATCH_*`` overrides are applied (that is :func:`load_config`'s work); ``env``
    (default ``os.environ``) is only where ``kafka.security.sasl_password_env`` is looked up.
    Relative paths are resolved against the working directory.

    Raises
    ------
    ConfigError
        One line per problem, each naming its key path.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config error: expected a mapping of sections, got a {type(data).__name__}",
            paths=[""],
        )
    env = os.environ if env is None else env
    return _build(dict(data), env, Path.cwd(), _Origin(), [])

"""kafka.consumer and kafka.producer: pass-through settings for kafka-python.

They are checked against its DEFAULT_CONFIG tables; the agent keeps the settings its guarantees
depend on.
"""

import difflib
from collections.abc import Mapping
from types import NoneType
from typing import Any

from agent.config._errors import _Issue, _problems
from agent.config.security import KafkaSecurity

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

"""Small validators and the field types built from them.

Also the parsing of kafka.bootstrap_servers and kafka.topics: a comma-separated string or a list.
"""

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from agent.config._errors import _context, _Expect, _Issue, _problems


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

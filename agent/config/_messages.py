"""Turning pydantic's errors into ConfigError lines."""

import difflib
from dataclasses import dataclass, field
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from agent.config._base import _submodel
from agent.config._errors import _ERROR_TYPE, _HIDDEN, _TAGS, _Expect, _Issue
from agent.config.sections import AgentConfig
from agent.config.security import KafkaSecurity
from agent.exceptions import ConfigError

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
        loc = tuple(part for part in err["loc"] if part not in _TAGS)
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
            stated = not isinstance(loc[-1], int) and any(
                isinstance(m, _Expect) for m in getattr(info, "metadata", ())
            )
            expected = _expected(info) if stated or (info and not mapping) else None
            expected = expected or ("a mapping" if mapping else None)
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

"""Reading the file, the environment and the overrides."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from agent.config._errors import _Issue
from agent.config._messages import _KeyPath, _Origin
from agent.config.sections import AgentConfig
from agent.exceptions import ConfigError

ENV_PREFIX = "ROBUSTWATCH_"
CONFIG_ENV_VAR = "ROBUSTWATCH_CONFIG"  # names the config file; not an override


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


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> str | None:
    """Put ``value`` at ``path``, merged into a mapping there; a digit names a list item.

    Returns what is wrong, or None: a list can only be entered by the index of an item.
    """
    node: Any = data
    for depth, key in enumerate(path):
        if isinstance(node, list):
            if not (key.isdigit() and int(key) < len(node)):
                where = ".".join(path[:depth])
                items = f"0 to {len(node) - 1}" if node else "it is empty"
                return f"{where} is a list: name one of its items by index ({items})"
            key = int(key)
        elif key not in node:
            node[key] = None
        if depth == len(path) - 1:
            node[key] = _merge(node[key], value)
        else:
            if not isinstance(node[key], dict | list):
                node[key] = {}
            node = node[key]
    return None


def _key_path(parts: tuple[str, ...]) -> _KeyPath:
    """Parts as in an error's location: list indices as integers."""
    return tuple(int(part) if part.isdigit() else part for part in parts)


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
            origin.sources[_key_path(parts)] = f"environment variable {name}"
            problem = _set(data, parts, value)
            if problem is not None:
                problems.append((_key_path(parts), _Issue("", problem)))
    return problems


def _flat_overrides(overrides: Mapping[str, Any] | None) -> list:
    return [
        (tuple(str(key).split(".")), value, f"overrides[{str(key)!r}]")
        for key, value in (overrides or {}).items()
    ]

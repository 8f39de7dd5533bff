"""The public functions: load_config and config_from_dict."""

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config._errors import _Issue
from agent.config._messages import _config_error, _issues, _KeyPath, _Origin
from agent.config._sources import (
    CONFIG_ENV_VAR,
    _apply_env,
    _flat_overrides,
    _key_path,
    _read_yaml,
    _set,
)
from agent.config.sections import AgentConfig
from agent.exceptions import ConfigError


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
        origin.sources[_key_path(parts)] = label
        problem = _set(data, parts, value)
        if problem is not None:
            problems.append((_key_path(parts), _Issue("", problem)))
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

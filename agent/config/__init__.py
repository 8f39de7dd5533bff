"""Agent configuration: a YAML file validated with pydantic, with environment overrides.

The file holds one mapping per section: ``kafka``, ``model``, ``reference``, ``detectors``,
``pipeline``, ``metrics`` and ``logging``. Each section class documents its keys and
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

Modules: :mod:`~agent.config.sections` (``model`` to ``logging``, and :class:`AgentConfig`),
:mod:`~agent.config.drift_config` (one detector of ``detectors.drift``, a list or one mapping),
:mod:`~agent.config.kafka_config` (``kafka``), :mod:`~agent.config.security`
(``kafka.security``); the private ``_fields`` (field types, server and topic lists),
``_clients`` (``kafka.consumer`` and ``kafka.producer``), ``_errors`` and ``_messages`` (error
lines), ``_sources`` (file, environment, overrides) and ``_loading`` (the public functions).

Examples
--------
>>> cfg = config_from_dict(
...     {"kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
...      "model": {"name": "digits"}}, env={})
>>> cfg.kafka.bootstrap_servers, cfg.kafka.topics
(('localhost:9092',), ('inference',))
>>> cfg.detectors.drift.p_val
0.05
>>> cfg = config_from_dict(
...     {"kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
...      "model": {"name": "digits"}, "reference": {"capture_first": 1000},
...      "detectors": {"drift": [{"type": "ks", "features": [0, 3]},
...                              {"type": "mmd-online", "ert": 1000}]}}, env={})
>>> [(spec.name, spec.window, spec.ert) for spec in cfg.detectors.drift_specs]
[('ks', 200, None), ('mmd-online', None, 1000.0)]
>>> try:
...     config_from_dict({"kafka": {"bootstrap_servers": "localhost:9092", "topics": "inference"},
...                       "model": {"name": "digits"}, "detectors": {"drift": {"p_val": 1.5}}},
...                      env={})
... except ConfigError as err:
...     print(err)
config error at detectors.drift.p_val: expected a float in (0, 1), got 1.5
"""

from agent.config._loading import config_from_dict, load_config
from agent.config._sources import CONFIG_ENV_VAR, ENV_PREFIX
from agent.config.drift_config import DriftConfig, PreprocessingConfig
from agent.config.kafka_config import KafkaConfig
from agent.config.sections import (
    AgentConfig,
    DetectorsConfig,
    LoggingConfig,
    MetricsConfig,
    ModelConfig,
    PipelineConfig,
    ReferenceConfig,
)
from agent.config.security import KafkaSecurity
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
    "PreprocessingConfig",
    "ReferenceConfig",
    "config_from_dict",
    "load_config",
]

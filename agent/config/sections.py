"""The sections other than ``kafka``, and :class:`AgentConfig`, which holds them all."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from agent.config._base import _Section
from agent.config._errors import _Expect
from agent.config._fields import (
    _Float,
    _Int,
    _int_to_str,
    _log_level,
    _lower,
    _OptFile,
    _PositiveFloat,
    _PositiveInt,
    _reference_file,
    _Text,
)
from agent.config.kafka_config import KafkaConfig


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

"""The sections other than ``kafka``, and :class:`AgentConfig`, which holds them all."""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, model_validator

from agent.config._base import _Section
from agent.config._errors import _LIST, _ONE, _Expect, _Issue, _problems
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
from agent.config.drift_config import DriftConfig, _refuse_duplicate_names, _unique_names
from agent.config.input_detector_config import InputDetectorConfig, StatefulConfig
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
    input_shape : list of int, optional
        The shape of one model input, e.g. ``[1, 8, 8]``; events carry inputs flattened, and
        detectors that run the model reshape them to it. Default: the shape of one row of
        the reference file's ``x``.
    device : {'auto', 'cpu', 'cuda'}, default 'auto'
        Where detectors run the model (``auto``: CUDA when present).
    """

    name: _Text
    version: Annotated[
        str | None,
        BeforeValidator(_int_to_str),
        Field(min_length=1),
        _Expect('a non-empty string (quote numbers: "1.10")'),
    ] = None
    path: _OptFile = None
    input_shape: Annotated[
        tuple[_PositiveInt, ...] | None,
        Field(min_length=1),
        _Expect("a non-empty list of positive integers"),
    ] = None
    device: Annotated[Literal["auto", "cpu", "cuda"], BeforeValidator(_lower)] = "auto"


class ReferenceConfig(_Section):
    """Reference data that detectors are fitted on: ``reference``.

    Give one of ``path`` and ``capture_first``; a list of drift detectors needs one.

    Attributes
    ----------
    path : path, optional
        A ``.npy`` file of inputs, or a ``.npz`` with ``x`` (inputs) and, for the output
        drift detectors, ``outputs`` (one row per row of ``x``); must exist.
    capture_first : int, optional
        Use the first N events the agent reads as the reference (inputs and outputs), then
        fit the detectors; >= 10. Those events carry no drift verdict, and they must be
        trusted: drifted or poisoned traffic captured here becomes the law the rest is
        compared with.
    """

    path: Annotated[
        Path | None, AfterValidator(_reference_file), _Expect("an existing .npz or .npy file")
    ] = None
    capture_first: Annotated[_Int | None, Field(ge=10), _Expect("an integer >= 10")] = None

    @model_validator(mode="after")
    def _one_source(self) -> "ReferenceConfig":
        if self.path is not None and self.capture_first is not None:
            message = "give reference.path or reference.capture_first, not both"
            raise _problems(_Issue("capture_first", message, self.capture_first))
        return self


def _drift_form(value: Any) -> str:
    return _LIST if isinstance(value, list | tuple) else _ONE


class DetectorsConfig(_Section):
    """Which detectors run on the traffic: ``detectors``.

    Attributes
    ----------
    drift : DriftConfig or tuple of DriftConfig
        A list of drift detectors (see :class:`DriftConfig`), or one mapping alone: the older
        form, a KS test unless it names another ``type``. Default: one KS test, which runs
        only when a reference is configured.
    adversarial, outlier : tuple of InputDetectorConfig, default empty
        Per-input detectors (see :class:`InputDetectorConfig`), flagging
        ``adversarial:<name>`` or ``outlier:<name>``; they need ``reference.path``.
    stateful : StatefulConfig
        Stateful detection of query attacks per client (off by default).
    """

    drift: Annotated[
        Annotated[DriftConfig, Tag(_ONE)]
        | Annotated[tuple[DriftConfig, ...], AfterValidator(_unique_names), Tag(_LIST)],
        Discriminator(_drift_form),
        _Expect("a list of detector mappings, or one mapping"),
    ] = Field(default_factory=DriftConfig)
    adversarial: tuple[InputDetectorConfig, ...] = ()
    outlier: tuple[InputDetectorConfig, ...] = ()
    stateful: StatefulConfig = Field(default_factory=StatefulConfig)

    @model_validator(mode="after")
    def _names_are_unique(self) -> "DetectorsConfig":
        keyed = [
            (f"{family}.{i}", spec.name)
            for family in ("adversarial", "outlier")
            for i, spec in enumerate(getattr(self, family))
        ]
        _refuse_duplicate_names(keyed, "detectors.", "the name is its metrics' detector label")
        return self

    @property
    def input_specs(self) -> tuple[tuple[str, str, InputDetectorConfig], ...]:
        """The enabled per-input detectors as (family, key path, spec)."""
        return tuple(
            (family, f"detectors.{family}.{i}", spec)
            for family in ("adversarial", "outlier")
            for i, spec in enumerate(getattr(self, family))
            if spec.enabled
        )

    @property
    def drift_specs(self) -> tuple[DriftConfig, ...]:
        """The enabled drift detectors, whichever form ``drift`` was given in."""
        specs = self.drift if isinstance(self.drift, tuple) else (self.drift,)
        return tuple(spec for spec in specs if spec.enabled)


class PipelineConfig(_Section):
    """Batching, back-pressure and lifecycle: ``pipeline``.

    Attributes
    ----------
    max_batch_records : int, default 1000
        Records taken per poll, >= 1. A poll costs about 0.3 ms of CPU in kafka-python 3
        whatever it returns, so under sustained load larger batches are cheaper: in
        ``benchmarks/throughput.py`` 1,000 gave 8-15% more events per second than 500 in four
        runs of five, and the same in the fifth. Under light load a poll returns what there
        is, so the size costs no latency. Models that detectors run are fed in their own
        ``batch_size`` chunks.
    max_inflight_batches : int, default 4
        Batches produced but not yet acknowledged before the agent stops reading: it waits
        for the oldest, and pauses its partitions if that outlasts ``poll_timeout_ms``.
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
    worker_process : bool, default False
        Decode and detect in a second process (see :mod:`agent.worker`), so that the Kafka
        clients and the detectors each use a core: about 1.8 times the events per second
        where the agent may use two cores. Off, everything runs in one process (one core).
    """

    max_batch_records: _PositiveInt = 1000
    max_inflight_batches: _PositiveInt = 4
    poll_timeout_ms: _PositiveInt = 100
    shutdown_timeout_seconds: _PositiveFloat = 10.0
    startup_retry_max_seconds: Annotated[_Float, Field(ge=0), _Expect("a number >= 0")] = 300.0
    commit_interval_seconds: Annotated[_Float, Field(ge=0), _Expect("a number >= 0")] = 1.0
    worker_process: bool = False


class MetricsConfig(_Section):
    """The Prometheus endpoint: ``metrics``.

    Attributes
    ----------
    host : str, default '0.0.0.0'
        Address to listen on.
    port : int, default 9108
        Port to listen on, 0 to 65535; 0 picks a free port.
    max_feature_series : int, default 64
        A drift detector exports one ``robustwatch_feature_drift_p_value`` series per feature
        only while it tests at most this many features (label cardinality stays bounded);
        0 turns those series off.
    """

    host: _Text = "0.0.0.0"
    port: Annotated[_Int, Field(ge=0, le=65535), _Expect("an integer from 0 to 65535")] = 9108
    max_feature_series: Annotated[_Int, Field(ge=0), _Expect("an integer >= 0")] = 64


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

    @model_validator(mode="after")
    def _drift_has_a_reference(self) -> "AgentConfig":
        listed = isinstance(self.detectors.drift, tuple) and any(
            spec.needs_reference for spec in self.detectors.drift_specs
        )
        ref = self.reference
        if listed and ref.path is None and ref.capture_first is None:
            message = (
                "the drift detectors listed in detectors.drift need a reference: set "
                "reference.path or reference.capture_first"
            )
            raise _problems(_Issue("reference", message))
        return self

    @model_validator(mode="after")
    def _input_detectors_have_what_they_need(self) -> "AgentConfig":
        issues = []
        specs = self.detectors.input_specs
        if specs and self.reference.path is None:
            message = (
                f"{specs[0][1]} ({specs[0][2].name}) is calibrated on reference.path: set it "
                "(reference.capture_first serves drift detectors only)"
            )
            issues.append(_Issue("reference.path", message))
        for _, key, spec in specs:
            if spec.reads == "inputs" and self.model.path is None:
                message = f"{key} ({spec.name}) runs the model on the events' inputs: set it"
                issues.append(_Issue("model.path", message))
        if issues:
            raise _problems(*issues)
        return self

"""The ``kafka`` section: where inference traffic comes from and where results go."""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from agent.config._base import _Section
from agent.config._clients import _client_settings
from agent.config._errors import _Issue, _problems
from agent.config._fields import (
    _lower,
    _OptText,
    _PositiveFloat,
    _PositiveInt,
    _servers,
    _Text,
    _Topic,
    _topics,
)
from agent.config.security import KafkaSecurity


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

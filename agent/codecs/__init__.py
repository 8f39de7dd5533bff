"""Wire formats of inference traffic, one module each, and the per-record format sniffer.

Pure decoding: no Kafka client here. `agent.events.EventDecoder` is the facade the runner uses.

- `oip`: Open Inference Protocol (KServe V2, Triton, Seldon "V2") JSON bodies.
- `kserve`: KServe payload-logger CloudEvents (binary mode) and the request/response join.
- `plain`: the plain JSON form ``{"id", "inputs", "outputs"?, "label"?, ...}``.
- `sniff`: tells OIP from plain bodies when a topic's format is ``auto``.
- `tensors`, `arrays`, `common`, `join`: OIP tensors, JSON numbers to arrays, shared helpers,
  the bounded join table.
"""

from agent.codecs import arrays, kserve, oip, plain
from agent.codecs.common import CodecOptions, parse_object
from agent.codecs.join import JoinBuffer
from agent.codecs.kserve import CloudEventJoiner
from agent.codecs.sniff import sniff_body

__all__ = [
    "CloudEventJoiner",
    "CodecOptions",
    "JoinBuffer",
    "arrays",
    "kserve",
    "oip",
    "parse_object",
    "plain",
    "sniff_body",
]

"""Tell the format of a JSON body when a topic's format is ``auto``.

Records with CloudEvent headers (``ce_id`` or ``ce_type``) are sniffed before parsing, by the
decoder; this module looks at the parsed body of the others.

Examples
--------
>>> sniff_body({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})
'oip-json'
>>> sniff_body({"id": "a", "inputs": [1.0, 2.0]})
'plain-json'
>>> sniff_body({"instances": [[1.0]]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
agent.events.DecodeError: cannot tell the record's format: ...
"""

from __future__ import annotations

from agent.events import DecodeError

_PLAIN_ITEMS = (int, float, list)


def sniff_body(body: dict) -> str:
    """Return ``"oip-json"`` or ``"plain-json"`` for ``body``, or raise ``unknown-format``.

    OIP: ``inputs`` is a list of objects with a ``datatype`` (or, for a bare response that the
    OIP codec then explains, there are no ``inputs`` and ``outputs`` are such objects). Plain:
    ``inputs`` is a list of numbers or lists.
    """
    inputs = body.get("inputs")
    if type(inputs) is list:
        first = inputs[0] if inputs else 0.0
        if type(first) is dict:
            if "datatype" in first:
                return "oip-json"
        elif isinstance(first, _PLAIN_ITEMS):
            return "plain-json"
    elif inputs is None:
        outputs = body.get("outputs")
        if type(outputs) is list and outputs and "datatype" in _as_dict(outputs[0]):
            return "oip-json"
    detail = (
        "cannot tell the record's format: expected an OIP body ('inputs' as a list of tensors "
        "with a 'datatype'), a plain body ('inputs' as a list of numbers), or KServe CloudEvent "
        "headers (ce_id, ce_type); set the topic's format explicitly for a precise error"
    )
    if "instances" in body or "predictions" in body:
        detail += "; a KServe V1 body is only read with its CloudEvent headers"
    raise DecodeError("unknown-format", detail)


def _as_dict(value: object) -> dict:
    return value if type(value) is dict else {}

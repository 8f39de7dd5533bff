"""Hand-run timing check of the decode hot path (not a test; nothing asserts a time).

Run from the repository root: ``.venv/bin/python benchmarks/decode.py``; it prints the
best microseconds per record over many short runs (the machine is shared: take the minimum).
"""

from __future__ import annotations

import json
import time
import timeit

import numpy as np

from agent.events import EventDecoder, RawRecord


def _records() -> dict[str, tuple[str, RawRecord]]:
    row = np.random.default_rng(0).random(32).tolist()
    plain = json.dumps({"id": "e1", "inputs": row, "label": 3}).encode()
    tensor = {"name": "x", "shape": [1, 32], "datatype": "FP32", "data": row}
    oip = json.dumps({"id": "e1", "inputs": [tensor]}).encode()
    headers = (("client-id", b"c1"),)
    return {
        "plain-json, 32 floats": ("plain-json", RawRecord("t", 0, 1, 0, None, plain, headers)),
        "oip-json, 1 row FP32 x32": ("oip-json", RawRecord("t", 0, 1, 0, None, oip, headers)),
        "auto -> plain": ("auto", RawRecord("t", 0, 1, 0, None, plain, headers)),
        "auto -> oip": ("auto", RawRecord("t", 0, 1, 0, None, oip, headers)),
    }


def main(number: int = 2_000, repeat: int = 50, warmup_seconds: float = 1.0) -> None:
    records = _records()
    warm = EventDecoder("auto", model_name="m")
    deadline = time.perf_counter() + warmup_seconds  # let the CPU clock settle first
    while time.perf_counter() < deadline:
        for _, record in records.values():
            warm.decode(record)
    for name, (fmt, record) in records.items():
        decoder = EventDecoder(fmt, model_name="m")
        assert decoder.decode(record).error is None
        timer = timeit.Timer(lambda d=decoder, r=record: d.decode(r))
        best = min(timer.repeat(number=number, repeat=repeat))
        print(f"{name:28s} {best / number * 1e6:6.2f} us/record")


if __name__ == "__main__":
    main()

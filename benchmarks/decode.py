"""Hand-run timing check of the decode hot path (not a test; nothing asserts a time).

Run from the repository root: ``.venv/bin/python benchmarks/decode.py``; it prints, per case,
the best microseconds per record of ``EventDecoder.decode`` (one record at a time) and of
``EventDecoder.decode_batch`` (batches of 500), both over the same 500 records, each carrying
its own 32 random features. The best is over many short runs (the machine is shared: take the
minimum).
"""

from __future__ import annotations

import json
import time
import timeit

import numpy as np

from agent.events import EventDecoder, RawRecord

BATCH = 500


def _plain(row: list[float], i: int) -> dict:
    return {"id": f"e{i}", "inputs": row, "label": 3}


def _bare(row: list[float], i: int) -> dict:
    return {"id": f"e{i}", "model": "bench", "inputs": row}


def _oip(row: list[float], i: int) -> dict:
    return {"id": f"e{i}", "inputs": [{"name": "x", "shape": [1, 32], "datatype": "FP32",
                                       "data": row}]}  # fmt: skip


CLIENT = (("client-id", b"c1"),)
CASES = {  # name: (format, body of row i, headers)
    "plain-json, 32 floats": ("plain-json", _plain, CLIENT),
    "plain-json, bare, no headers": ("plain-json", _bare, ()),
    "oip-json, 1 row FP32 x32": ("oip-json", _oip, CLIENT),
    "auto -> plain": ("auto", _plain, CLIENT),
    "auto -> plain, bare": ("auto", _bare, ()),
    "auto -> oip": ("auto", _oip, CLIENT),
}


def _records(body, headers) -> list[RawRecord]:
    rows = np.random.default_rng(0).random((BATCH, 32)).tolist()
    return [
        RawRecord("t", 0, i, 1_700_000_000_000, None, json.dumps(body(row, i)).encode(), headers)
        for i, row in enumerate(rows)
    ]


def _best(run, repeat: int) -> float:
    """Best microseconds per record of ``run()``, which decodes `BATCH` records."""
    return min(timeit.repeat(run, number=4, repeat=repeat)) / (4 * BATCH) * 1e6


def main(repeat: int = 100, warmup_seconds: float = 1.0) -> None:
    cases = {name: (fmt, _records(body, headers)) for name, (fmt, body, headers) in CASES.items()}
    deadline = time.perf_counter() + warmup_seconds  # let the CPU clock settle first
    while time.perf_counter() < deadline:
        for fmt, records in cases.values():
            EventDecoder(fmt, model_name="m").decode_batch(records)
    print(f"{'us/record':34s} {'decode':>7s} {'decode_batch':>13s}")
    for name, (fmt, records) in cases.items():
        decoder = EventDecoder(fmt, model_name="m")
        assert all(d.error is None for d in decoder.decode_batch(records))
        one = _best(lambda d=decoder, rs=records: [d.decode(r) for r in rs], repeat)
        batch = _best(lambda d=decoder, rs=records: d.decode_batch(rs), repeat)
        print(f"{name:34s} {one:7.2f} {batch:13.2f}")


if __name__ == "__main__":
    main()

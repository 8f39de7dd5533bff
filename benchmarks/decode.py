"""Hand-run timing check of the decode hot path (not a test; nothing asserts a time).

Run from the repository root: ``.venv/bin/python benchmarks/decode.py``; it prints, per case,
the best microseconds per record of ``EventDecoder.decode`` (one record at a time) and of
``EventDecoder.decode_batch`` (batches of 500), both over the same 500 records, each carrying
its own 32 random features. The best is over many short runs (the machine is shared: take the
minimum). Those 500 records stay in the CPU's caches, which live traffic does not: the last
column decodes 100,000 distinct records in batches of 500 once (best of 3), as the agent meets
them, which costs more per record.
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


COLD = 100_000  # distinct records for the last column


def _records(body, headers, n: int = BATCH) -> list[RawRecord]:
    rows = np.random.default_rng(0).random((n, 32)).tolist()
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
    print(f"{'us/record':34s} {'decode':>7s} {'decode_batch':>13s} {'100k distinct':>14s}")
    for name, (fmt, records) in cases.items():
        decoder = EventDecoder(fmt, model_name="m")
        assert all(d.error is None for d in decoder.decode_batch(records))
        one = _best(lambda d=decoder, rs=records: [d.decode(r) for r in rs], repeat)
        batch = _best(lambda d=decoder, rs=records: d.decode_batch(rs), repeat)
        print(f"{name:34s} {one:7.2f} {batch:13.2f} {_cold(fmt, CASES[name]):14.2f}")


def _cold(fmt: str, case: tuple) -> float:
    """Microseconds per record of decode_batch over `COLD` distinct records, best of 3."""
    _, body, headers = case
    records = _records(body, headers, COLD)
    batches = [records[i : i + BATCH] for i in range(0, COLD, BATCH)]
    best = float("inf")
    for _ in range(3):
        decoder = EventDecoder(fmt, model_name="m")
        start = time.perf_counter()
        for batch in batches:
            decoder.decode_batch(batch)
        best = min(best, time.perf_counter() - start)
    return best / COLD * 1e6


if __name__ == "__main__":
    main()

"""A bounded, time-limited table of records waiting for their join partner.

Entries are keyed (e.g. by CloudEvent id) and kept in arrival order. An entry expires when it has
waited longer than ``ttl_seconds``; when ``max_pending`` entries wait, holding one more evicts the
oldest. Evicted entries wait in a queue until the next `JoinBuffer.expire` hands them back,
and until then their offsets still count in `JoinBuffer.held_offsets`, so that the consumer never
commits past a record whose events it has not received.

Examples
--------
>>> from agent.events import RawRecord
>>> now = [0.0]
>>> buf = JoinBuffer(ttl_seconds=10, max_pending=100, clock=lambda: now[0])
>>> rec = RawRecord("t", 0, 42, None, None, b"{}")
>>> buf.hold("abc", "request", rec, "payload")
>>> buf.held_offsets()
{('t', 0): 42}
>>> now[0] = 11.0
>>> [(e.key, e.kind, e.item) for e in buf.expire()], buf.held_offsets()
([('abc', 'request', 'payload')], {})
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.events import RawRecord


@dataclass(frozen=True, slots=True)
class Pending:
    """One waiting record: its key, its kind (e.g. "request"), the record and what it carries."""

    key: str
    kind: str
    record: RawRecord
    item: Any
    deadline: float


class JoinBuffer:
    """Hold records until their partner arrives, within a time-to-live and a size bound.

    Parameters
    ----------
    ttl_seconds : float
        How long an entry may wait, measured with ``clock``.
    max_pending : int
        How many entries may wait; holding one more evicts the oldest.
    clock : callable
        Monotonic seconds.
    """

    def __init__(self, ttl_seconds: float, max_pending: int, clock: Callable[[], float]) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_pending = max_pending
        self.clock = clock
        self._table: OrderedDict[str, Pending] = OrderedDict()
        self._evicted: list[Pending] = []
        self._offsets: dict[tuple[str, int], dict[int, int]] = {}

    def __len__(self) -> int:
        return len(self._table)

    def take(self, key: str, kind: str) -> Pending | None:
        """Remove and return the entry under ``key`` if it is of ``kind``, else None."""
        entry = self._table.get(key)
        if entry is None or entry.kind != kind:
            return None
        del self._table[key]
        self._untrack(entry.record)
        return entry

    def hold(self, key: str, kind: str, record: RawRecord, item: Any) -> None:
        """Hold ``record`` under ``key``, replacing an entry already there (a redelivery)."""
        old = self._table.pop(key, None)
        if old is not None:
            self._untrack(old.record)
        while len(self._table) >= self.max_pending:
            self._evicted.append(self._table.popitem(last=False)[1])
        self._table[key] = Pending(key, kind, record, item, self.clock() + self.ttl_seconds)
        self._track(record)

    def expire(self) -> list[Pending]:
        """Remove and return the evicted entries, then those that waited past the TTL."""
        out, self._evicted = self._evicted, []
        now = self.clock()
        table = self._table
        while table:
            entry = next(iter(table.values()))
            if entry.deadline >= now:
                break
            del table[entry.key]
            out.append(entry)
        for entry in out:
            self._untrack(entry.record)
        return out

    def held_offsets(self) -> dict[tuple[str, int], int]:
        """Map (topic, partition) to the smallest offset held, evicted entries included."""
        return {tp: min(offsets) for tp, offsets in self._offsets.items()}

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop every entry, waiting or evicted, whose record comes from ``partitions``."""
        revoked = set(partitions)
        if not revoked:
            return
        for key in [k for k, e in self._table.items() if _tp(e.record) in revoked]:
            del self._table[key]
        self._evicted = [e for e in self._evicted if _tp(e.record) not in revoked]
        for tp in revoked:
            self._offsets.pop(tp, None)

    def _track(self, record: RawRecord) -> None:
        counts = self._offsets.setdefault(_tp(record), {})
        counts[record.offset] = counts.get(record.offset, 0) + 1

    def _untrack(self, record: RawRecord) -> None:
        tp = _tp(record)
        counts = self._offsets[tp]
        left = counts[record.offset] - 1
        if left:
            counts[record.offset] = left
        else:
            del counts[record.offset]
            if not counts:
                del self._offsets[tp]


def _tp(record: RawRecord) -> tuple[str, int]:
    return (record.topic, record.partition)

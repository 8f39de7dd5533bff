"""Client bookkeeping for the stateful detector: ids checked, numbered, flagged, forgotten.

Client ids never leave this module except as the small integers that the index stores, and
never appear in a snapshot. Each client number also keys a secret bijection of hashes
(:func:`keyed_by_client`), under which the index posts the client's fingerprints a second
time. At most ``max_clients`` are remembered: the least recently seen is forgotten first, with
its flag. Id-less queries share one pool client, ``None``. A saved state holds keyed digests
of the ids, never the ids.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from typing import Any

import numpy as np

from detectors.exceptions import DataError, MissingClientError

__all__ = ["Clients", "check_client_ids", "keyed_by_client"]


def check_client_ids(client_ids: Any, n: int, missing: str, caller: str) -> list[str | None]:
    """One id per row, ``None`` for the id-less (None or ""), which ``missing="error"``
    refuses.

    >>> check_client_ids(["a", None, ""], 3, "pool", "Example")
    ['a', None, None]
    """
    ids = [None] * n if client_ids is None else list(client_ids)
    if len(ids) != n:
        raise DataError(f"{caller} got {len(ids)} client ids for {n} rows.")
    for i, cid in enumerate(ids):
        if cid is not None and not isinstance(cid, str):
            kind = type(cid).__name__
            raise DataError(f"client id of row {i} must be a str or None; got {kind}.")
        if not cid:
            if missing == "error":
                raise MissingClientError(
                    f"row {i} has no client id, and {caller} has missing_client='error'."
                )
            ids[i] = None
    return ids


class Clients:
    """Numbers and flags of the clients seen recently.

    ``id_key`` keys the digests under which :meth:`export` writes the clients down: a saved
    state holds no client id. Clients read back by :meth:`restore` take their number and
    flag again when they next show up.

    >>> clients = Clients(max_clients=2)
    >>> clients.numbers(["a", "b", "a", "c"]), len(clients)   # "b" is forgotten for "c"
    ([0, 1, 0, 2], 2)
    >>> clients.flag("a", until=10.0)
    >>> clients.flagged("a", now=5.0), clients.flagged("a", now=10.0), clients.n_flagged(5.0)
    (True, False, 1)
    >>> later = Clients(max_clients=2)
    >>> later.restore(clients.export())
    >>> later.flagged("a", now=5.0), later.numbers(["c", "d"])
    (True, [2, 3])
    """

    def __init__(self, max_clients: int, id_key: bytes = b"") -> None:
        self.max_clients = max_clients
        self._id_key = id_key
        self._numbers: OrderedDict[str | None, int] = OrderedDict()
        self._flagged_until: dict[str | None, float] = {}
        # clients read back from a saved state, by id digest, until they show up again
        self._restored: OrderedDict[str, tuple[int, float | None]] = OrderedDict()
        self._next = 0

    def __len__(self) -> int:
        return len(self._numbers) + len(self._restored)

    def numbers(self, clients: list[str | None]) -> list[int]:
        """The number of each client, new clients numbered in order of arrival."""
        return [self._number(client) for client in clients]

    def _number(self, client: str | None) -> int:
        number = self._numbers.get(client)
        if number is not None:
            self._numbers.move_to_end(client)
            return number
        restored = self._restored.pop(self._digest(client), None) if self._restored else None
        if restored is not None:
            number, until = restored
            if until is not None:
                self._flagged_until[client] = until
        else:
            number, self._next = self._next, self._next + 1
        self._numbers[client] = number
        if len(self) > self.max_clients:
            if self._restored:  # not seen since the restart: older than anyone seen since
                self._restored.popitem(last=False)
            else:
                forgotten, _ = self._numbers.popitem(last=False)
                self._flagged_until.pop(forgotten, None)
        return number

    def flag(self, client: str | None, until: float) -> None:
        """Flag ``client`` until time ``until``."""
        self._flagged_until[client] = until

    def flagged(self, client: str | None, now: float) -> bool:
        """Whether ``client`` is flagged at time ``now``."""
        if client not in self._numbers and self._restored:
            until = self._restored.get(self._digest(client), (0, None))[1]
            if until is not None:
                return now < until
        return now < self._flagged_until.get(client, -float("inf"))

    def n_flagged(self, now: float) -> int:
        """Clients flagged at time ``now``; expired flags are forgotten."""
        for client in [c for c, until in self._flagged_until.items() if until <= now]:
            del self._flagged_until[client]
        restored = sum(1 for _, until in self._restored.values() if until and until > now)
        return len(self._flagged_until) + restored

    def export(self) -> dict[str, Any]:
        """Every client, least recently seen first, as ``[id digest, number, flagged until
        or None]``, and the next number: JSON-ready, without a client id."""
        rows = [[d, n, u] for d, (n, u) in self._restored.items()]
        rows += [[self._digest(c), n, self._flagged_until.get(c)] for c, n in self._numbers.items()]
        return {"clients": rows, "next_number": self._next}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back the clients of :meth:`export` (the latest ``max_clients``)."""
        rows = state["clients"][-self.max_clients :]
        self._numbers.clear()
        self._flagged_until.clear()
        self._restored = OrderedDict((str(d), (int(n), u)) for d, n, u in rows)
        self._next = int(state["next_number"])

    def _digest(self, client: str | None) -> str:
        text = b"\x00pool" if client is None else client.encode()
        return hmac.new(self._id_key, text, hashlib.sha256).hexdigest()[:32]


_U64 = np.uint64


def keyed_by_client(prints: np.ndarray, owners: np.ndarray, key: np.uint64) -> np.ndarray:
    """Each row's hashes mapped by its client's secret bijection ``h -> (h ^ a) * m`` (mod
    2^32), ``a`` even and ``m`` odd from a SplitMix64 of the client number and ``key``.

    Hashes are odd, and so stay odd (never the padding 0) and distinct within a row.

    >>> prints = np.array([[0, 3, 5], [0, 3, 5]], dtype=np.uint32)
    >>> keyed = keyed_by_client(prints, np.array([0, 1]), np.uint64(7))
    >>> keyed[:, 0].tolist(), bool((keyed[:, 1:] % 2).all()), bool((keyed[0] != keyed[1]).any())
    ([0, 0], True, True)
    """
    with np.errstate(over="ignore"):
        z = owners.astype(np.uint64) ^ key
        z = z + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        z ^= z >> _U64(31)
        flip = (z & _U64(0xFFFFFFFE)).astype(np.uint32)[:, None]
        times = ((z >> _U64(32)) | _U64(1)).astype(np.uint32)[:, None]
        keyed = (prints ^ flip) * times
    keyed[prints == 0] = 0
    return keyed

"""Client bookkeeping for the stateful detector: ids checked, numbered, flagged, forgotten.

Client ids never leave this module except as the small integers that the index stores, and
never appear in a snapshot. Each client number also keys a secret bijection of hashes
(:func:`keyed_by_client`), under which the index posts the client's fingerprints a second
time. At most ``max_clients`` are remembered: the least recently seen
is forgotten first, with its flag. Id-less queries share one pool client, ``None``.
"""

from __future__ import annotations

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

    >>> clients = Clients(max_clients=2)
    >>> clients.numbers(["a", "b", "a", "c"]), len(clients)   # "b" is forgotten for "c"
    ([0, 1, 0, 2], 2)
    >>> clients.flag("a", until=10.0)
    >>> clients.flagged("a", now=5.0), clients.flagged("a", now=10.0), clients.n_flagged(5.0)
    (True, False, 1)
    """

    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self._numbers: OrderedDict[str | None, int] = OrderedDict()
        self._flagged_until: dict[str | None, float] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._numbers)

    def numbers(self, clients: list[str | None]) -> list[int]:
        """The number of each client, new clients numbered in order of arrival."""
        return [self._number(client) for client in clients]

    def _number(self, client: str | None) -> int:
        number = self._numbers.get(client)
        if number is not None:
            self._numbers.move_to_end(client)
            return number
        number, self._next = self._next, self._next + 1
        self._numbers[client] = number
        if len(self._numbers) > self.max_clients:
            forgotten, _ = self._numbers.popitem(last=False)
            self._flagged_until.pop(forgotten, None)
        return number

    def flag(self, client: str | None, until: float) -> None:
        """Flag ``client`` until time ``until``."""
        self._flagged_until[client] = until

    def flagged(self, client: str | None, now: float) -> bool:
        """Whether ``client`` is flagged at time ``now``."""
        return now < self._flagged_until.get(client, -float("inf"))

    def n_flagged(self, now: float) -> int:
        """Clients flagged at time ``now``; expired flags are forgotten."""
        for client in [c for c, until in self._flagged_until.items() if until <= now]:
            del self._flagged_until[client]
        return len(self._flagged_until)


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

"""What the stateful detector answers: :class:`QueryVerdicts` per batch, and
:class:`StatefulSnapshot` for metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QueryVerdicts", "StatefulSnapshot"]


@dataclass(frozen=True, eq=False)
class QueryVerdicts:
    """Answers for one batch of queries, one entry per row, in order.

    Attributes
    ----------
    flagged : bool ndarray
        The query's client is flagged: the ``query-attack`` flag.
    global_alarm : bool ndarray
        ``global_matches >= global_threshold``: the global signal, for attacks spread over
        clients.
    client_matches, global_matches : int ndarray
        Distinct earlier fingerprints within ``ttl`` that the query matches, from its own
        client and from any client.
    """

    flagged: np.ndarray
    global_alarm: np.ndarray
    client_matches: np.ndarray
    global_matches: np.ndarray


@dataclass(frozen=True)
class StatefulSnapshot:
    """Counts for metrics, read at scrape time; no client id ever leaves the detector.

    Attributes
    ----------
    queries_total, flagged_queries_total, global_alarms_total : int
        Since construction or :meth:`StatefulQueryDetector.reset`.
    fingerprints : int
        Index entries younger than ``ttl``.
    capacity : int
        ``max_fingerprints``.
    clients_tracked : int
        Clients with state (at most ``max_clients``).
    clients_flagged : int
        Clients flagged within the last ``ttl``.
    memory_bytes : int
        Bytes held by the index arrays.
    seconds_total : float
        Wall-clock seconds spent in ``update``/``observe``: with ``queries_total``, the cost
        per query.
    """

    queries_total: int
    flagged_queries_total: int
    global_alarms_total: int
    fingerprints: int
    capacity: int
    clients_tracked: int
    clients_flagged: int
    memory_bytes: int
    seconds_total: float

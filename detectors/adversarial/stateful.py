"""Stateful detection of query attacks (Blacklight): :class:`StatefulQueryDetector`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from detectors._validation import Constraint, Interval, Options, check_rows, validate_params
from detectors.adversarial._clients import Clients, check_client_ids, keyed_by_client
from detectors.adversarial._fingerprint import Fingerprinter, read_salt
from detectors.adversarial._query_index import BUCKET_SIZE, QueryIndex
from detectors.adversarial._state_file import read_state, write_state
from detectors.adversarial.query_results import QueryVerdicts, StatefulSnapshot
from detectors.exceptions import DataError, ParameterError

__all__ = ["StatefulQueryDetector"]

_NAME = "StatefulQueryDetector"

_KEY_DOMAIN = b"robustwatch/stateful-key\x00"


class StatefulQueryDetector:
    """Flags clients that send many near-identical queries: black-box attacks in progress.

    Every query is fingerprinted as in Blacklight (Li et al. 2022): quantised with step
    ``step`` (bin edges shifted by a secret per position), every window of ``window_size``
    consecutive flattened values hashed with a key derived from the secret salt, and the
    ``top_k`` largest distinct hashes kept. Two queries *match* when their fingerprints share
    at least ``match_threshold`` hashes; an inverted index from hash to recent fingerprints
    finds the earlier matches of each query (:class:`~detectors.adversarial._query_index.
    QueryIndex`).

    One match is not an attack: retries, popular inputs and low-entropy images (digits,
    blank pages) match each other. But a query attack (Square, HopSkipJump, Boundary, NES)
    probes one neighbourhood hundreds of times with ever new inputs, so each new query
    matches *many distinct* earlier ones, whereas retries and popular inputs repeat a few
    inputs exactly. So, for each query, the detector counts the distinct earlier inputs
    (by a digest of their exact values) within ``ttl`` whose fingerprints its own matches,
    repeats of itself excluded so that exact repeats never add up: from its own client, and
    from anyone. A client is flagged when its count reaches
    ``client_threshold``; its queries carry ``query-attack`` from then until ``ttl`` seconds
    after its last such query. The global count, for attacks spread over many clients, is
    reported per query as its own signal, against ``global_threshold``.

    A bucket of the index keeps only the latest postings of its hashes, and the hashes that
    popular or low-entropy benign inputs share are posted by most queries: they would flush
    an attacker's older postings within seconds of heavy traffic, and the attacker's own
    matches would drop below the threshold. So every hash is posted a second time, mapped by
    a secret bijection of its client (``h -> (h xor a_c) * m_c`` modulo 2^32), and the client
    count reads those postings: each client's land in buckets of their own, which only its
    own traffic can flush.

    Work is vectorised over a batch: call with the micro-batches the agent consumes rather
    than row by row (a call costs about a hundred array operations, and a few dozen more per
    16 rows; ``benchmarks/adversarial_detection.py`` measures the cost per query). Cost and
    memory per query are reported by :meth:`snapshot`.

    Parameters
    ----------
    salt : bytes or str or None, default=None
        Secret key material of at least 16 bytes, e.g. from configuration. Never stored,
        shown or logged; only a key derived from it is kept. Give exactly one of ``salt`` and
        ``salt_file``.
    salt_file : str or Path or None, default=None
        A file holding the salt (a mounted secret); surrounding whitespace is dropped.
    step : float, default=50/255
        Quantisation step in input units: Blacklight's 50 grey levels for pixels in [0, 1]
        (pass 50 for pixels in [0, 255]). Coarser steps tolerate more perturbation per match
        but make unrelated low-entropy inputs alike.
    window_size : int, default=20
        Values per hashed window (Blacklight's CIFAR-10 setting; it uses 50 for ImageNet).
        A perturbation of one value changes the ``window_size`` windows covering it, so
        small inputs need small windows (4 for 8x8 digits).
    top_k : int, default=50
        Hashes per fingerprint (Blacklight's).
    match_threshold : int, default=25
        Shared hashes for a match: half the fingerprint, as in Blacklight. At most ``top_k``;
        queries with fewer distinct windows than this never match (nor are stored).
    client_threshold : int, default=10
        Distinct earlier inputs of the same client, matched by one query, that flag the
        client. Retries and similar inputs of one client match a few; query attacks tens
        within their first 50 queries. A client that re-sends jittered copies of one input
        (exact repeats do not count) more often than this looks like a probe, and is
        flagged: raise the threshold where such traffic is expected. At most 32: the index
        keeps the 32 latest postings of a hash, so counts saturate there for a tight
        cluster of queries.
    global_threshold : int, default=25
        Distinct earlier inputs of any client, matched by one query, that raise the global
        signal. Higher, because low-entropy and popular inputs resemble each other across
        clients; at most 32, as above.
    ttl : float, default=3600.0
        Seconds a fingerprint counts and a flag lasts: attacks of thousands of queries take
        minutes to hours, and older fingerprints only cost memory.
    max_fingerprints : int, default=100_000
        Fingerprints kept (a ring: the oldest is evicted first), allocated and written up
        front, so that no page fault lands on the query path. The index takes about
        ``26 * top_k`` bytes per fingerprint (every hash is posted twice, see above): 130 MB
        with the defaults.
    max_clients : int, default=100_000
        Clients with state; the least recently seen is forgotten first.
    missing_client : {"pool", "error"}, default="pool"
        What a query without a client id (None or "") does: ``"pool"`` counts it with every
        other id-less query in one pool client (so unrelated id-less traffic adds up: supply
        ids where you can); ``"error"`` raises :class:`~detectors.exceptions.MissingClientError`.

    References
    ----------
    H. Li, S. Shan, E. Wenger, J. Zhang, H. Zheng, B. Y. Zhao, "Blacklight: scalable defense
    for neural networks against query-based black-box attacks", USENIX Security 2022.

    Examples
    --------
    One client probes around one input, another sends unrelated inputs:

    >>> rng = np.random.default_rng(0)
    >>> sq = StatefulQueryDetector(salt=b"0123456789abcdef", step=0.1, window_size=8,
    ...                            top_k=20, match_threshold=10, client_threshold=5)
    >>> x0 = rng.random(64)
    >>> probes = np.clip(x0 + rng.choice([-0.03, 0.0, 0.03], size=(20, 64), p=[.05, .9, .05]), 0, 1)
    >>> others = rng.random((20, 64))
    >>> stream = np.stack([probes, others], 1).reshape(40, 64)
    >>> flags = sq.update(stream, client_ids=["mallory", "alice"] * 20, now=0.0)
    >>> flags[0::2].argmax(), flags[1::2].any()
    (np.int64(5), np.False_)
    >>> sq.snapshot(now=0.0).clients_flagged
    1
    """

    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "step": Interval(Real, 0, None, closed="neither"),
        "window_size": Interval(Integral, 1, None),
        "top_k": Interval(Integral, 1, None),
        "match_threshold": Interval(Integral, 1, None),
        "client_threshold": Interval(Integral, 1, None),
        "global_threshold": Interval(Integral, 1, None),
        "ttl": Interval(Real, 0, None, closed="neither"),
        "max_fingerprints": Interval(Integral, 1, None),
        "max_clients": Interval(Integral, 1, None),
        "missing_client": Options(("pool", "error")),
    }

    def __init__(
        self,
        salt: bytes | str | None = None,
        *,
        salt_file: str | Path | None = None,
        step: float = 50 / 255,
        window_size: int = 20,
        top_k: int = 50,
        match_threshold: int = 25,
        client_threshold: int = 10,
        global_threshold: int = 25,
        ttl: float = 3600.0,
        max_fingerprints: int = 100_000,
        max_clients: int = 100_000,
        missing_client: str = "pool",
    ) -> None:
        self.salt_file = salt_file
        self.step = step
        self.window_size = window_size
        self.top_k = top_k
        self.match_threshold = match_threshold
        self.client_threshold = client_threshold
        self.global_threshold = global_threshold
        self.ttl = ttl
        self.max_fingerprints = max_fingerprints
        self.max_clients = max_clients
        self.missing_client = missing_client
        validate_params(self.get_params(), self._parameter_constraints, type(self).__name__)
        for name in ("client_threshold", "global_threshold"):
            if (value := getattr(self, name)) > BUCKET_SIZE:
                raise ParameterError(
                    f"The {name!r} parameter of StatefulQueryDetector must be at most "
                    f"{BUCKET_SIZE}, where match counts saturate. Got {value} instead."
                )
        if match_threshold > top_k:
            raise ParameterError(
                "The 'match_threshold' parameter of StatefulQueryDetector "
                f"must be at most top_k={top_k}. Got {match_threshold} instead."
            )
        self._key = hashlib.sha256(_KEY_DOMAIN + read_salt(salt, salt_file)).digest()
        self._client_key = np.uint64(int.from_bytes(self._derived(b"client-hashes")[:8], "little"))
        self.reset()

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters by name, the salt left out."""
        return {name: getattr(self, name) for name in ("salt_file", *self._parameter_constraints)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"{type(self).__name__}(salt=<hidden>, {args})"

    def reset(self) -> None:
        """Forget every fingerprint, client and count (the parameters and salt stay)."""
        self._fingerprinter: Fingerprinter | None = None
        self._index = QueryIndex(self.max_fingerprints, self.top_k, self.match_threshold)
        self._clients = Clients(self.max_clients, self._derived(b"client-ids"))
        self._counts = [0, 0, 0]  # queries, flagged queries, global alarms
        self._seconds = 0.0

    def save(self, path: str | Path) -> Path:
        """Write the fingerprints, clients and counts to ``path`` (one ``.npz`` file, written
        atomically), so that a restarted agent goes on where this one stopped.

        No pickle, no salt and no client id: clients are written as digests keyed by the
        salt, and a check value lets :meth:`restore` refuse a state of another salt. The
        file grows with the fingerprints stored, up to about the index's size
        (:meth:`snapshot`'s ``memory_bytes``): the index's rows that hold nothing are left out.
        """
        meta = {
            "class": _NAME,
            "layout": self._layout(),
            "salt_check": self._derived(b"state-check").hex(),
            "counts": self._counts,
            "seconds": self._seconds,
            **self._clients.export(),
        }
        return write_state(path, meta, self._index.arrays())

    def restore(self, path: str | Path) -> None:
        """Take back a state written by :meth:`save`, replacing this detector's own.

        The thresholds, ``ttl`` and ``max_clients`` may differ from the saving detector's;
        what shapes fingerprints and the index (``step``, ``window_size``, ``top_k``,
        ``match_threshold``, ``max_fingerprints``) and the salt may not.

        Raises
        ------
        DataError
            If ``path`` holds no such state, or one of another salt or layout; the detector
            is then left as it was.
        OSError
            If ``path`` cannot be read.
        """
        meta, arrays = read_state(path)
        if meta.get("class") != _NAME:
            raise DataError(f"{path} holds no {_NAME} state (it holds {meta.get('class')!r}).")
        if meta.get("salt_check") != self._derived(b"state-check").hex():
            raise DataError(f"{path} holds the state of a detector with another salt.")
        saved, layout = meta.get("layout") or {}, self._layout()
        differ = [
            f"{k} {saved.get(k)!r} (now {v!r})"
            for k, v in layout.items()
            if k != "n_features" and saved.get(k) != v
        ]
        if differ:
            raise DataError(f"{path} was saved with other parameters: {', '.join(differ)}.")
        try:
            index = QueryIndex(self.max_fingerprints, self.top_k, self.match_threshold)
            index.restore(arrays)
            clients = Clients(self.max_clients, self._derived(b"client-ids"))
            clients.restore(meta)
            n = saved.get("n_features")
            fingerprinter = None if n is None else self._new_fingerprinter(int(n))
            counts, seconds = [int(c) for c in meta["counts"]], float(meta["seconds"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path} holds a damaged state: {exc!r}") from None
        self._fingerprinter, self._index, self._clients = fingerprinter, index, clients
        self._counts, self._seconds = counts, seconds

    def _layout(self) -> dict[str, Any]:
        n = None if self._fingerprinter is None else int(self._fingerprinter.offsets.size)
        keys = ("step", "window_size", "top_k", "match_threshold", "max_fingerprints")
        return {**{key: getattr(self, key) for key in keys}, "n_features": n}

    def _derived(self, purpose: bytes) -> bytes:
        """A key for ``purpose``, derived from the salt's key."""
        return hashlib.sha256(_KEY_DOMAIN + purpose + b"\x00" + self._key).digest()

    def update(
        self, x: Any, client_ids: Sequence[str | None] | None = None, now: float | None = None
    ) -> np.ndarray:
        """Record the queries ``x`` (one per row) and return their ``query-attack`` flags.

        ``client_ids`` has one id per row (None: all rows are id-less); ``now`` is the time
        in seconds (default ``time.time()``). Returns a bool ndarray of shape (n,).
        """
        return self.observe(x, client_ids, now).flagged

    def observe(
        self, x: Any, client_ids: Sequence[str | None] | None = None, now: float | None = None
    ) -> QueryVerdicts:
        """As :meth:`update`, with the global signal and the match counts."""
        start = time.perf_counter()
        rows = self._check(x)
        clients = check_client_ids(client_ids, rows.shape[0], self.missing_client, _NAME)
        now = time.time() if now is None else float(now)
        prints, digests = self._fingerprinter(rows), self._fingerprinter.digests(rows)
        owners = np.asarray(self._clients.numbers(clients), dtype=np.int64)
        own_prints = keyed_by_client(prints, owners, self._client_key)
        n_client, n_global = self._index.observe(
            prints, own_prints, digests, owners, now, now - self.ttl
        )
        flagged = np.zeros(rows.shape[0], dtype=bool)
        triggers = (n_client >= self.client_threshold).tolist()
        for i, (client, trigger) in enumerate(zip(clients, triggers, strict=True)):
            if trigger:
                self._clients.flag(client, now + self.ttl)
            flagged[i] = self._clients.flagged(client, now)
        verdicts = QueryVerdicts(flagged, n_global >= self.global_threshold, n_client, n_global)
        self._counts[0] += rows.shape[0]
        self._counts[1] += int(verdicts.flagged.sum())
        self._counts[2] += int(verdicts.global_alarm.sum())
        self._seconds += time.perf_counter() - start
        return verdicts

    def snapshot(self, now: float | None = None) -> StatefulSnapshot:
        """Counts for metrics at time ``now`` (default ``time.time()``); forgets expired flags."""
        now = time.time() if now is None else float(now)
        return StatefulSnapshot(
            *self._counts,
            fingerprints=self._index.live(now - self.ttl),
            capacity=self.max_fingerprints,
            clients_tracked=len(self._clients),
            clients_flagged=self._clients.n_flagged(now),
            memory_bytes=self._index.nbytes,
            seconds_total=self._seconds,
        )

    def _check(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        rows = check_rows(x, name="x", caller=_NAME, dtype=dtype)  # float32 stays float32
        rows = rows.reshape(rows.shape[0], -1)
        if self._fingerprinter is None:
            self._fingerprinter = self._new_fingerprinter(rows.shape[1])
        elif rows.shape[1] != self._fingerprinter.offsets.size:
            raise DataError(
                f"x has {rows.shape[1]} values per row, but StatefulQueryDetector "
                f"has seen {self._fingerprinter.offsets.size}; use one detector "
                "per model input shape, or reset() it."
            )
        return rows

    def _new_fingerprinter(self, n_features: int) -> Fingerprinter:
        return Fingerprinter(self._key, n_features, self.step, self.window_size, self.top_k)

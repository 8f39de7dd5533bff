"""A bounded inverted index from fingerprint hashes to recent queries, in fixed numpy arrays.

Stored queries live in a ring of ``capacity`` slots (the oldest is overwritten first), with
the time, owner (client number) and digest (of the input) of each. The
inverted index is a table of buckets, each a ring of the ``BUCKET_SIZE`` most recent postings
``(tag, sequence number)`` of the hashes that fall in it, the tag being 16 bits of the hash.
Every hash of a fingerprint is posted, so the number of a query's hashes found posted by an
earlier query is the number of hashes they share: no stored fingerprint needs re-reading.
A posting whose slot has been overwritten since is recognised by its sequence number (more
than ``capacity`` queries old), and one older than the window by its slot's time. Memory is
fixed at construction.

Counts are exact but for two rare approximations: another hash of a bucket passes for the
looked-up one when their tags agree (probability ``2**-15`` per posting: a spurious shared
hash for about one query in twenty, which matters only for a pair one hash short of the
threshold), and a bucket keeps only its ``BUCKET_SIZE`` latest postings. Buckets are sized
for half a posting per place, so that a posting outlives ``capacity`` queries with
probability above 99%; a bucket flooded by one popular hash forgets its other hashes' older
postings first, and a tight cluster of near-identical queries finds at most about
``BUCKET_SIZE`` of its earlier members: match counts saturate there.

A batch is answered with a fixed number of array operations per chunk of ``CHUNK`` rows:
matches with the index as it was before the chunk, and with earlier rows of the chunk itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["BUCKET_SIZE", "QueryIndex"]

BUCKET_SIZE = 32
CHUNK = 16
_ROW_BITS = 4  # log2(CHUNK)


def _tag(hashes: np.ndarray) -> np.ndarray:
    """The 16-bit tag a posting keeps of its hash: the top bits (never 0, the empty tag)."""
    return (hashes >> np.uint32(16)).astype(np.uint16) | np.uint16(1)


def _runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``codes`` (sorted) and how often each occurs."""
    codes = np.sort(codes)
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))[: codes.size]
    return codes[starts], np.diff(np.append(starts, codes.size))


def _distinct_per_row(rows: np.ndarray, digests: np.ndarray, n: int) -> np.ndarray:
    """Distinct digests of each row of a chunk (compared on their top 60 bits)."""
    codes = digests >> np.uint64(_ROW_BITS) << np.uint64(_ROW_BITS) | rows.astype(np.uint64)
    rows_of_distinct = _runs(codes)[0] & np.uint64(CHUNK - 1)
    return np.bincount(rows_of_distinct.astype(np.intp), minlength=n)


class QueryIndex:
    """Stored queries and the inverted index of their fingerprints.

    Parameters
    ----------
    capacity : int
        Queries kept.
    top_k : int
        Hashes per fingerprint (uint32, ascending, zero-padded in front).
    match_threshold : int
        Shared hashes that make a match.

    Examples
    --------
    >>> index = QueryIndex(capacity=100, top_k=4, match_threshold=3)
    >>> prints = np.array([[3, 5, 7, 9], [3, 5, 7, 11], [3, 5, 7, 9]], dtype=np.uint32)
    >>> digests = np.array([100, 101, 100], dtype=np.uint64)   # the third repeats the first
    >>> index.observe(prints, digests, owners=[0, 0, 1], now=0.0, oldest=-1.0)
    (array([0, 1, 0]), array([0, 1, 1]))

    The third query, a repeat of the first by another client, counts only the second.
    """

    def __init__(self, capacity: int, top_k: int, match_threshold: int) -> None:
        self.capacity = capacity
        self.threshold = match_threshold
        self.n_buckets = max(1024, math.ceil(2 * capacity * top_k / BUCKET_SIZE))
        # np.full writes every page now: no page faults on the query path later
        self.times = np.full(capacity, -np.inf)
        self.owners = np.full(capacity, -1, dtype=np.int64)
        self.digests = np.full(capacity, 0, dtype=np.uint64)
        self.tags = np.full((self.n_buckets, BUCKET_SIZE), 0, dtype=np.uint16)
        self.postings = np.full((self.n_buckets, BUCKET_SIZE), 0, dtype=np.uint32)
        self.cursor = np.full(self.n_buckets, 0, dtype=np.int64)
        self.stored = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.times, self.owners, self.digests, self.tags, self.postings, self.cursor)
        return sum(a.nbytes for a in arrays)

    def live(self, oldest: float) -> int:
        """Stored queries from time ``oldest`` on."""
        return int(np.count_nonzero(self.times >= oldest))

    def observe(
        self,
        prints: np.ndarray,
        digests: np.ndarray,
        owners: Sequence[int],
        now: float,
        oldest: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each query, in order, count the distinct queries (by ``digests``, of the
        inputs) stored since ``oldest`` or earlier in the batch whose fingerprints share at
        least ``match_threshold`` hashes with its own, from its owner and from anyone,
        repeats of itself excluded; then store the batch. Returns the two counts.

        Fingerprints with fewer than ``match_threshold`` hashes match nothing and are not
        stored.
        """
        owners = np.asarray(owners, dtype=np.int64)
        counts = [
            self._chunk(
                prints[i : i + CHUNK], digests[i : i + CHUNK], owners[i : i + CHUNK], now, oldest
            )
            for i in range(0, prints.shape[0], CHUNK)
        ]
        return np.concatenate([c[0] for c in counts]), np.concatenate([c[1] for c in counts])

    def _chunk(self, prints, digests, owners, now, oldest) -> tuple[np.ndarray, np.ndarray]:
        n, k = prints.shape
        start = k - np.count_nonzero(prints, axis=1)
        valid = k - start >= self.threshold
        row, col = np.nonzero(valid[:, None] & (np.arange(k) >= start[:, None]))
        hashes = prints[row, col]
        old_row, old_slot = self._lookup(row, hashes, oldest)
        new_row, new_src = _matched(*_earlier_rows(row, hashes), self.threshold)
        cand_row = np.concatenate([old_row, new_row])
        cand_digest = np.concatenate([self.digests[old_slot], digests[new_src]])
        cand_owner = np.concatenate([self.owners[old_slot], owners[new_src]])
        other = cand_digest != digests[cand_row]
        same = other & (cand_owner == owners[cand_row])
        result = (
            _distinct_per_row(cand_row[same], cand_digest[same], n),
            _distinct_per_row(cand_row[other], cand_digest[other], n),
        )
        self._insert(row, hashes, np.flatnonzero(valid), owners, digests, now)
        return result

    def _lookup(self, row, hashes, oldest) -> tuple[np.ndarray, np.ndarray]:
        """(row, slot) of each stored query within the window whose postings show at least
        ``match_threshold`` of the row's hashes."""
        buckets = (hashes % np.uint32(self.n_buckets)).astype(np.intp)
        hit, place = np.nonzero(self.tags[buckets] == _tag(hashes)[:, None])
        posted = self.postings[buckets[hit], place]
        rows, posted = _matched(row[hit], posted, self.threshold)
        age = (np.uint32(self.stored % 2**32) - posted.astype(np.uint32)).astype(np.int64)
        live = (age >= 1) & (age <= self.capacity)  # older slots have been overwritten
        slot = (self.stored - age[live]) % self.capacity
        recent = self.times[slot] >= oldest
        return rows[live][recent], slot[recent]

    def _insert(self, row, hashes, rows, owners, digests, now) -> None:
        if not rows.size:
            return
        sequence = self.stored + np.arange(rows.size)
        self.stored += rows.size
        slots = sequence % self.capacity
        self.times[slots] = now
        self.owners[slots], self.digests[slots] = owners[rows], digests[rows]
        posted = np.empty(owners.size, dtype=np.uint32)
        posted[rows] = sequence % 2**32
        bucket = (hashes % np.uint32(self.n_buckets)).astype(np.int64)
        order = np.argsort(bucket, kind="stable")  # by bucket, then in arrival order
        bucket, hashes, posted = bucket[order], hashes[order], posted[row[order]]
        first = np.concatenate(([True], bucket[1:] != bucket[:-1]))
        starts = np.flatnonzero(first)
        sizes = np.diff(np.append(starts, bucket.size))
        rank = np.arange(bucket.size) - np.repeat(starts, sizes)
        place = (self.cursor[bucket] + rank) % BUCKET_SIZE
        self.cursor[bucket[first]] = (self.cursor[bucket[first]] + sizes) % BUCKET_SIZE
        last = rank >= np.repeat(sizes, sizes) - BUCKET_SIZE  # the rest would be overwritten
        bucket, place = bucket[last], place[last]
        self.tags[bucket, place], self.postings[bucket, place] = _tag(hashes[last]), posted[last]


def _matched(rows: np.ndarray, ids: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (row, id) pairs that occur at least ``threshold`` times: one occurrence per
    shared hash."""
    pairs, shared = _runs(ids.astype(np.int64) << _ROW_BITS | rows)
    pairs = pairs[shared >= threshold]
    return pairs & (CHUNK - 1), pairs >> _ROW_BITS


def _earlier_rows(row: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row j, row i) for each hash of row j that row i < j of the same chunk also has."""
    order = np.argsort(hashes, kind="stable")  # equal hashes in row order
    sorted_hashes = hashes[order]
    lo = np.searchsorted(sorted_hashes, hashes, "left")
    n_eq = np.searchsorted(sorted_hashes, hashes, "right") - lo
    which = np.repeat(np.arange(hashes.size), n_eq)
    offset = np.arange(which.size) - np.repeat(np.cumsum(n_eq) - n_eq, n_eq)
    later, earlier = row[which], row[order[lo[which] + offset]]
    keep = earlier < later
    return later[keep], earlier[keep]

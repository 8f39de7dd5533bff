"""A bounded inverted index from fingerprint hashes to recent queries, in fixed numpy arrays.

Stored queries live in a ring of ``capacity`` slots (the oldest is overwritten first), with
the time, owner (client number) and digest (of the input) of each. The
inverted index is a table of buckets, each a ring of the ``BUCKET_SIZE`` most recent postings
``(tag, sequence number)`` of the hashes that fall in it, the tag being 16 bits of the hash.
Every hash of a fingerprint is posted, so the number of a query's hashes found posted by an
earlier query is the number of hashes they share: no stored fingerprint needs re-reading.
Every hash is posted twice: as is, for matches with any client's queries, and mapped by a
secret bijection of its client, for matches with the client's own: those postings spread
over buckets of the client's own, which other clients' traffic does not flush.
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

A batch is answered chunk by chunk of ``CHUNK`` rows: each row matches the index as it was
before its chunk, and the earlier rows of its chunk directly. Only the lookups and the stores
run chunk by chunk, in a few dozen array operations each; the rest (where each posting lands,
the matches within chunks, the distinct counts) runs once for the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detectors.adversarial._match_counting import (
    CHUNK,
    LOOKUP_BITS,
    ROW_BITS,
    distinct_per_row,
    matched,
    same_chunk_matches,
)
from detectors.exceptions import DataError

__all__ = ["BUCKET_SIZE", "QueryIndex"]

BUCKET_SIZE = 32
_BUCKET_BITS = 5  # log2(BUCKET_SIZE)


def _tag(hashes: np.ndarray) -> np.ndarray:
    """The 16-bit tag a posting keeps of its hash: the top bits (never 0, the empty tag)."""
    return (hashes >> np.uint32(16)).astype(np.uint16) | np.uint16(1)


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
    >>> own = prints * np.array([[3], [3], [5]], dtype=np.uint32)   # keyed by owner: 0, 0, 1
    >>> digests = np.array([100, 101, 100], dtype=np.uint64)   # the third repeats the first
    >>> index.observe(prints, own, digests, owners=[0, 0, 1], now=0.0, oldest=-1.0)
    (array([0, 1, 0]), array([0, 1, 1]))

    The third query, a repeat of the first by another client, counts only the second, and
    none of its own client's.
    """

    def __init__(self, capacity: int, top_k: int, match_threshold: int) -> None:
        self.capacity = capacity
        self.threshold = match_threshold
        # two postings per hash: as is, and keyed by the client
        self.n_buckets = max(1024, math.ceil(2 * capacity * 2 * top_k / BUCKET_SIZE))
        # np.full writes every page now: no page faults on the query path later
        self.times = np.full(capacity, -np.inf)
        self.owners = np.full(capacity, -1, dtype=np.int64)
        self.digests = np.full(capacity, 0, dtype=np.uint64)
        # A bucket's tags and postings side by side in one row of 192 bytes, which a lookup
        # reads in one gather: the table is far larger than the caches.
        self.buckets = np.full((self.n_buckets, 3 * BUCKET_SIZE), 0, dtype=np.uint16)
        self.tags = self.buckets[:, :BUCKET_SIZE]
        self.postings = self.buckets[:, BUCKET_SIZE:].view(np.uint32)
        self.cursor = np.full(self.n_buckets, 0, dtype=np.int64)
        self.stored = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.times, self.owners, self.digests, self.tags, self.postings, self.cursor)
        return sum(a.nbytes for a in arrays)

    #: The per-query arrays, saved whole (a few MB at most).
    SLOT_ARRAYS = ("times", "owners", "digests")

    def arrays(self) -> dict[str, np.ndarray]:
        """The index's arrays and its count of stored queries, to save.

        The table of buckets is saved by its rows that hold a posting (``bucket_rows``, with
        their contents and cursors), so that the file of a young index is small: a full
        table of 100,000 queries is 120 MB, and most of it zeros for a long while.
        """
        rows = np.flatnonzero(self.tags.any(axis=1) | (self.cursor != 0))
        return {
            **{name: getattr(self, name) for name in self.SLOT_ARRAYS},
            "bucket_rows": rows,
            "bucket_data": self.buckets[rows],
            "bucket_cursor": self.cursor[rows],
            "stored": np.array(self.stored),
        }

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Take back the arrays of :meth:`arrays`, saved by an index of the same shape; also
        those of the first state format, which held the whole table (``buckets``, ``cursor``).

        Raises
        ------
        DataError
            If an array is missing, of another shape or dtype, or names rows of the table
            this index does not have.
        """
        if "buckets" in arrays:  # state format 1 saved the whole table: every row of it
            whole = {"bucket_rows": np.arange(self.n_buckets), "bucket_data": arrays["buckets"]}
            arrays = {**arrays, **whole, "bucket_cursor": arrays.get("cursor")}
        rows = arrays.get("bucket_rows")
        n = rows.shape[0] if rows is not None and rows.ndim == 1 else 0
        expected = {
            "bucket_rows": np.empty(n, dtype=np.intp),
            "bucket_data": self.buckets[:n],
            "bucket_cursor": self.cursor[:n],
            **{name: getattr(self, name) for name in self.SLOT_ARRAYS},
        }
        for name, here in expected.items():
            saved = arrays.get(name)
            if saved is None or saved.shape != here.shape or saved.dtype != here.dtype:
                found = "missing" if saved is None else f"{saved.dtype} {saved.shape}"
                raise DataError(
                    f"the saved index's {name} is {found}; this index holds "
                    f"{here.dtype} {here.shape}"
                )
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_buckets):
            raise DataError(
                f"the saved index names bucket rows up to {rows.max()}; this index has "
                f"{self.n_buckets}"
            )
        for name in self.SLOT_ARRAYS:
            getattr(self, name)[...] = arrays[name]
        self.buckets[...] = 0  # in place: tags and postings are views
        self.cursor[...] = 0
        self.buckets[rows] = arrays["bucket_data"]
        self.cursor[rows] = arrays["bucket_cursor"]
        self.stored = int(arrays["stored"])

    def live(self, oldest: float) -> int:
        """Stored queries from time ``oldest`` on."""
        return int(np.count_nonzero(self.times >= oldest))

    def observe(
        self,
        prints: np.ndarray,
        own_prints: np.ndarray,
        digests: np.ndarray,
        owners: Sequence[int],
        now: float,
        oldest: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each query, in order, count the distinct queries (by ``digests``, of the
        inputs) stored since ``oldest`` or earlier in the batch whose fingerprints share at
        least ``match_threshold`` hashes with its own, repeats of itself excluded: from its
        owner, and from anyone; then store the batch. Returns the two counts.

        ``own_prints`` are ``prints`` mapped by a bijection of their owner, so that the
        owner count reads postings that no other owner's traffic can flush. Fingerprints
        with fewer than ``match_threshold`` hashes match nothing and are not stored.
        """
        owners = np.asarray(owners, dtype=np.int64)
        n, k = prints.shape
        valid = np.count_nonzero(prints, axis=1) >= self.threshold
        both = np.concatenate([prints, own_prints], axis=1)
        # a fingerprint's hashes are its nonzero entries (zeros pad it in front)
        found = np.flatnonzero((both != 0) & valid[:, None])
        keyed = (found % (2 * k) >= k).astype(np.intp)
        post = _Postings(found // (2 * k), both.reshape(-1)[found], valid, self)
        rows, found_digest, found_owner = [], [], []
        for c in range(post.chunks):
            lo, hi = post.bounds[c], post.bounds[c + 1]
            # rows of the chunk, 16 more for its keyed hashes: its own lookups
            local = post.row[lo:hi] & (CHUNK - 1) | keyed[lo:hi] << ROW_BITS
            row, slot = self._lookup(local, post.bucket[lo:hi], post.tag[lo:hi], oldest)
            rows.append(row + 2 * CHUNK * c)
            found_digest.append(self.digests[slot])  # before the chunk's stores overwrite it
            found_owner.append(self.owners[slot])
            self._store(post, c, owners, digests, now)
        self.cursor[post.heads] = (self.cursor[post.heads] + post.sizes) % BUCKET_SIZE
        plain = keyed == 0
        later, earlier = same_chunk_matches(post.row[plain], post.hashes[plain], n, self.threshold)
        found_row = np.concatenate(rows)
        own_lookup = (found_row & CHUNK) != 0
        found_row = (found_row >> LOOKUP_BITS << ROW_BITS) | (found_row & (CHUNK - 1))
        found_digest, found_owner = np.concatenate(found_digest), np.concatenate(found_owner)

        def count(lookup: np.ndarray, own: bool) -> np.ndarray:
            """Distinct other inputs matched, from ``lookup``'s postings and the chunk's rows."""
            row = np.concatenate([found_row[lookup], later])
            digest = np.concatenate([found_digest[lookup], digests[earlier]])
            keep = digest != digests[row]  # repeats of the query itself do not count
            if own:
                keep &= np.concatenate([found_owner[lookup], owners[earlier]]) == owners[row]
            return distinct_per_row(row[keep], digest[keep], n)

        return count(own_lookup, own=True), count(~own_lookup, own=False)

    def _lookup(self, row, bucket, tag, oldest) -> tuple[np.ndarray, np.ndarray]:
        """(row, slot) of each stored query within the window whose postings show at least
        ``match_threshold`` of the row's hashes (of bucket ``bucket`` and tag ``tag``)."""
        found = self.buckets[bucket]  # one gather of whole bucket rows
        hit = np.flatnonzero(found[:, :BUCKET_SIZE] == tag[:, None])
        at = hit >> _BUCKET_BITS
        # postings of hit ``at * 32 + place`` at ``at * 48 + 16 + place`` of the uint32 rows
        posted = found.view(np.uint32).reshape(-1)[hit + (at << 4) + BUCKET_SIZE // 2]
        rows, posted = matched(row[at], posted, self.threshold)
        if not rows.size:
            return rows, rows
        age = (np.uint32(self.stored % 2**32) - posted.astype(np.uint32)).astype(np.int64)
        live = (age >= 1) & (age <= self.capacity)  # older slots have been overwritten
        slot = (self.stored - age[live]) % self.capacity
        recent = self.times[slot] >= oldest
        return rows[live][recent], slot[recent]

    def _store(self, post: _Postings, c: int, owners, digests, now) -> None:
        """Store the rows of chunk ``c`` and post their hashes."""
        rows = post.stored_rows[post.stored_bounds[c] : post.stored_bounds[c + 1]]
        if not rows.size:
            return
        slots = (self.stored + np.arange(rows.size)) % self.capacity
        self.stored += rows.size
        self.times[slots] = now
        self.owners[slots], self.digests[slots] = owners[rows], digests[rows]
        lo, hi = post.write_bounds[c], post.write_bounds[c + 1]
        bucket, place = post.write_bucket[lo:hi], post.write_place[lo:hi]
        self.tags[bucket, place], self.postings[bucket, place] = post.write[:, lo:hi]


class _Postings:
    """A batch's postings, one per hash of a stored row, in the order they are stored (by
    row), split in chunks of ``CHUNK`` rows at ``bounds``; and where each chunk writes
    them: the bucket's place after its earlier postings, the chunk's own later postings
    to the same place left out (``write_*``, split at ``write_bounds``)."""

    def __init__(self, row, hashes, valid, index: QueryIndex) -> None:
        self.row, self.hashes = row, hashes
        self.bucket = (hashes % np.uint32(index.n_buckets)).astype(np.intp)
        self.tag = _tag(hashes)
        self.chunks = (valid.size + CHUNK - 1) // CHUNK
        starts = np.arange(self.chunks + 1) * CHUNK
        self.bounds = np.searchsorted(row, starts)
        self.stored_rows = np.flatnonzero(valid)
        self.stored_bounds = np.searchsorted(self.stored_rows, starts)
        sequence = (np.cumsum(valid) - 1 + index.stored)[row] % 2**32
        # rank among the batch's postings to the bucket; by one sort of (bucket, position)
        bits = max(1, row.size.bit_length())
        keys = np.sort(self.bucket.astype(np.int64) << bits | np.arange(row.size))
        order, ordered = keys & ((1 << bits) - 1), keys >> bits
        first = np.ones(row.size, dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        begins = np.flatnonzero(first)
        self.heads, self.sizes = ordered[begins], np.diff(begins, append=row.size)
        begin = np.repeat(begins, self.sizes)
        rank = np.empty_like(order)
        rank[order] = np.arange(row.size) - begin
        write = slice(None)
        if row.size and self.sizes.max() > BUCKET_SIZE:  # a chunk may overwrite its own
            by_chunk = ordered * self.chunks + (row >> ROW_BITS)[order]
            through = np.empty_like(order)  # postings to the bucket up to this chunk
            through[order] = np.searchsorted(by_chunk, by_chunk + 1) - begin
            write = rank >= through - BUCKET_SIZE
        self.write_bucket = self.bucket[write]
        self.write_place = (index.cursor[self.write_bucket] + rank[write]) % BUCKET_SIZE
        self.write = np.stack([self.tag[write], sequence[write]]).astype(np.uint32)
        self.write_bounds = np.searchsorted(row[write], starts)

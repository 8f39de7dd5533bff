"""The sort-based kernels of :class:`~detectors.adversarial._query_index.QueryIndex`: pairs of
(query, stored query) that share at least ``threshold`` hashes, and distinct matches per query.

Rows are numbered within chunks of ``CHUNK`` (16) rows, so that a (row, id) pair packs into one
int64 for sorting; a lookup numbers a chunk's rows twice (``LOOKUP_BITS``), once for its plain
hashes and once for its client-keyed ones.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHUNK", "LOOKUP_BITS", "ROW_BITS", "distinct_per_row", "matched", "same_chunk_matches"]

CHUNK = 16
ROW_BITS = 4  # log2(CHUNK)
LOOKUP_BITS = ROW_BITS + 1  # a chunk's rows, and again for their keyed hashes
_BIN_BITS = 14


def _runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``codes`` (sorted) and how often each occurs."""
    codes = np.sort(codes)
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))[: codes.size]
    return codes[starts], np.diff(np.append(starts, codes.size))


def same_chunk_matches(row, hashes, n, threshold) -> tuple[np.ndarray, np.ndarray]:
    """(row j, row i) for each pair of rows i < j of the same chunk that share at least
    ``threshold`` hashes (a row's hashes are distinct)."""
    if n == 1:
        return row[:0], row[:0]
    # one sort of (chunk, hash, row in chunk): equal hashes of a chunk together, in row order
    keys = np.sort(
        (row >> ROW_BITS).astype(np.uint64) << np.uint64(36)
        | hashes.astype(np.uint64) << np.uint64(ROW_BITS)
        | (row & (CHUNK - 1)).astype(np.uint64)
    )
    group = keys >> np.uint64(ROW_BITS)
    first = np.ones(keys.size, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    begin = np.maximum.accumulate(np.where(first, np.arange(keys.size), 0))
    n_earlier = np.arange(keys.size) - begin  # earlier rows with the hash, for each in order
    later = np.repeat(np.arange(keys.size), n_earlier)
    offset = np.arange(later.size) - np.repeat(np.cumsum(n_earlier) - n_earlier, n_earlier)
    earlier = np.repeat(begin, n_earlier) + offset
    local = (keys & np.uint64(CHUNK - 1)).astype(np.intp)
    chunk_row = (keys >> np.uint64(36)).astype(np.intp) * CHUNK
    pair = (chunk_row + local)[later] * CHUNK + local[earlier]
    shared = np.flatnonzero(np.bincount(pair, minlength=n * CHUNK) >= threshold)
    j = shared // CHUNK
    return j, j - (j & (CHUNK - 1)) + (shared & (CHUNK - 1))


def distinct_per_row(rows: np.ndarray, digests: np.ndarray, n: int) -> np.ndarray:
    """Distinct digests of each row (compared on their top 60 bits)."""
    if not rows.size:
        return np.zeros(n, dtype=np.int64)
    top = digests >> np.uint64(4)
    order = np.lexsort((top, rows))
    rows, top = rows[order], top[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (top[1:] != top[:-1])
    return np.bincount(rows[first], minlength=n)


def matched(rows: np.ndarray, ids: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (row, id) pairs that occur at least ``threshold`` times: one occurrence per
    shared hash.

    Counted by sorting, after a pass that keeps only the pairs whose bin (of ``2**_BIN_BITS``,
    by the low bits of the pair) holds ``threshold`` occurrences: a superset of the answer,
    found without sorting the thousands of postings of popular hashes.
    """
    if rows.size < threshold:
        return rows[:0], ids[:0].astype(np.int64)
    pairs = ids.astype(np.int64) << LOOKUP_BITS | rows
    if pairs.size > 4 * threshold:
        size = 1 << min(_BIN_BITS, max(10, pairs.size.bit_length()))
        bins = pairs & (size - 1)
        pairs = pairs[np.bincount(bins, minlength=size)[bins] >= threshold]
    pairs, shared = _runs(pairs)
    pairs = pairs[shared >= threshold]
    return pairs & (2 * CHUNK - 1), pairs >> LOOKUP_BITS

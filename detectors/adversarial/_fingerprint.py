"""Blacklight's probabilistic fingerprint of a query, vectorised over a batch.

Each input is quantised, every sliding window of its flattened values is hashed with a keyed
hash, and the ``top_k`` largest distinct hashes are its fingerprint (Li et al. 2022). Two
queries that share many windows share many of those hashes, whatever the rest of the input.

The key comes from the secret salt: it shifts each position's quantisation bin edges by a
secret fraction of a step (as Blacklight's per-pixel salt does) and keys the window hash, so
that an attacker cannot predict which windows end up in a fingerprint. The window hash is a
polynomial ``Σ_j q_{i+j} B^j mod 2^64`` with a secret odd ``B``, computed for all windows at
once from prefix sums (``B`` is invertible modulo ``2^64``), then mixed by a multiply-xorshift;
fingerprints keep its top 32 bits (never 0, which pads short fingerprints).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from detectors.exceptions import ParameterError

__all__ = ["Fingerprinter", "read_salt"]

_DOMAIN = b"robustwatch/blacklight/v1\x00"
_U64 = np.uint64
# Rows fingerprinted at once: 1 MiB per float64 scratch array (42 CIFAR-10 images, 1024 digits),
# so that the dozen array operations of a chunk are shared by many rows.
_CHUNK_VALUES = 131_072
# Above this many windows per top_k, the top hashes are picked by a cut that about
# _CANDIDATES * top_k of a row's (uniform) hashes exceed, rather than by a partition.
_CUT_FACTOR = 16
_CANDIDATES = 4


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """``base**0 .. base**(n-1)`` modulo 2^64 (unsigned products wrap)."""
    out = np.ones(n, dtype=np.uint64)
    np.cumprod(np.full(n - 1, base, dtype=np.uint64), out=out[1:])
    return out


def _inverse(odd: np.uint64) -> np.uint64:
    """Inverse of an odd number modulo 2^64 by Newton's iteration (each step doubles the
    correct bits)."""
    inv = odd
    with np.errstate(over="ignore"):
        for _ in range(6):
            inv = inv * (_U64(2) - odd * inv)
    return inv


class Fingerprinter:
    """Fingerprints of flat inputs of ``n_features`` values.

    Parameters
    ----------
    key : bytes
        Secret key material (the salt).
    n_features : int
        Values per input.
    step : float
        Quantisation step, in input units.
    window : int
        Values per window; inputs shorter than a window are one window.
    top_k : int
        Hashes kept per fingerprint.

    Examples
    --------
    >>> fp = Fingerprinter(b"0123456789abcdef", 64, step=0.2, window=8, top_k=10)
    >>> x = np.random.default_rng(0).random((2, 64))
    >>> prints = fp(np.vstack([x, x[:1] + 0.001]))
    >>> prints.shape, prints.dtype, (prints[0] == prints[2]).sum() >= 5
    ((3, 10), dtype('uint32'), np.True_)
    """

    def __init__(self, key: bytes, n_features: int, step: float, window: int, top_k: int):
        seed = int.from_bytes(hashlib.sha256(_DOMAIN + key).digest(), "little")
        rng = np.random.default_rng(seed)
        self.window = min(window, n_features)
        self.top_k = top_k
        self.scale = 1.0 / step
        self.offsets = rng.random(n_features)
        base = rng.integers(0, 2**63, dtype=np.uint64) * _U64(2) + _U64(1)
        self.mix = rng.integers(0, 2**63, dtype=np.uint64) * _U64(2) + _U64(1)
        self.powers = _powers(base, n_features)
        weights = rng.integers(0, 2**31, size=2 * n_features, dtype=np.uint32)
        self.digest_weights = weights * np.uint32(2) + np.uint32(1)
        self.inverse_powers = _powers(_inverse(base), n_features - self.window + 1)
        # Scratch for self.rows rows, reused: fresh temporaries this large cost a page fault
        # per 4 KiB on every call, more than the arithmetic. Three arrays, each reused once
        # its first content is spent, so that a chunk's passes stay in cache.
        self.rows = min(1024, max(1, _CHUNK_VALUES // n_features))
        self._values = np.empty((self.rows, n_features))  # then the window hashes
        self._levels = np.empty((self.rows, n_features), dtype=np.int64)  # then the shifted
        self._prefix = np.zeros((self.rows, n_features + 1), dtype=np.uint64)

    def digests(self, x: np.ndarray) -> np.ndarray:
        """A 64-bit digest of each row's exact values (float32 or float64, as given): equal
        rows, equal digests; distinct rows collide with probability about 2**-32.

        ``Σ_j (w_j b_j mod 2**32)`` over the row's 32-bit words ``b_j``, with odd secret ``w_j``.
        """
        words = np.ascontiguousarray(x).view(np.uint32)
        products = words * self.digest_weights[: words.shape[1]]
        return products.sum(1, dtype=np.uint64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Fingerprints of ``x`` (n, n_features): uint32 (n, top_k), each row sorted
        ascending, zeros in front when a row has fewer than ``top_k`` distinct windows."""
        step = self.rows
        chunks = [self._chunk(x[i : i + step]) for i in range(0, x.shape[0], step)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _chunk(self, x: np.ndarray) -> np.ndarray:
        n, w, n_windows = x.shape[0], self.window, self.inverse_powers.size
        values, levels, prefix = self._values[:n], self._levels[:n], self._prefix[:n]
        np.multiply(x, self.scale, out=values)
        values += self.offsets
        np.floor(values, out=levels, casting="unsafe")  # floor, then to int64
        q = levels.view(np.uint64)
        h = _rows(self._values, n, n_windows)
        shifted = _rows(self._levels, n, n_windows)
        with np.errstate(over="ignore"):
            q *= self.powers
            np.cumsum(q, axis=1, out=prefix[:, 1:])
            np.subtract(prefix[:, w:], prefix[:, :-w], out=h)
            h *= self.inverse_powers
            np.right_shift(h, _U64(29), out=shifted)
            h ^= shifted
            h *= self.mix
        return _top_distinct(h, self.top_k)


def _rows(scratch: np.ndarray, n: int, width: int) -> np.ndarray:
    """The start of ``scratch``'s memory as a C-contiguous uint64 array (n, width)."""
    return scratch.reshape(-1)[: n * width].view(np.uint64).reshape(n, width)


def _top_distinct(h: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest distinct values ``(h >> 32) | 1`` of each row of the uint64 ``h``,
    ascending, zero-padded in front.

    Long rows (more than ``_CUT_FACTOR * k`` values: uniform hashes) keep the values above a
    cut that about ``_CANDIDATES * k`` of them exceed (:func:`_above_cut`); the rows left with
    fewer than ``k`` distinct ones there, which repeat themselves, go the short way.
    """
    if h.shape[1] <= _CUT_FACTOR * k:
        return _by_partition(_top_bits(h), k)
    out, short = _above_cut(h, k)
    if short.any():
        out[short] = _by_partition(_top_bits(h[short]), k)
    return out


def _top_bits(h: np.ndarray) -> np.ndarray:
    """``(h >> 32) | 1`` as uint32: the top 32 bits, never 0."""
    top = (h >> _U64(32)).astype(np.uint32)
    top |= np.uint32(1)
    return top


def _by_partition(h: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest distinct values of each row of the uint32 ``h`` (reordered in place),
    ascending, zero-padded in front: selects the ``2k`` largest values with a partition,
    which holds ``k`` distinct ones unless a row repeats itself; rows that do are redone with
    a full sort."""
    n, length = h.shape
    take = min(length, 2 * k)
    if take < length:
        h.partition(length - take, axis=1)  # in place: h is the caller's scratch
        top = np.sort(h[:, length - take :], axis=1)
    else:
        top = np.sort(h, axis=1)
    top = _dedup_sorted(top)
    out = np.zeros((n, k), dtype=np.uint32)
    width = min(k, take)
    out[:, k - width :] = top[:, take - width :]
    if take < length:  # h was reordered, not changed: its distinct values are still there
        for row in np.flatnonzero(out[:, 0] == 0):
            distinct = np.unique(h[row])[-k:]
            out[row, k - distinct.size :] = distinct
    return out


def _above_cut(h: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_top_distinct` among the values above the cut, and which rows have fewer
    than ``k`` there (their rows of the answer are left 0): one sort of the values above the
    cut with their row in the high bits, rather than a partition of every row.

    The values of a row above a cut on ``h`` are all its values from some value on, since
    ``(h >> 32) | 1`` never decreases with ``h``: if ``k`` of them are distinct, they hold
    the ``k`` largest.
    """
    n, length = h.shape
    cut = _U64(2**32 - (2**32 * _CANDIDATES * k) // length) << _U64(32)
    found = np.flatnonzero(h >= cut)
    keys = h.reshape(-1)[found] >> _U64(32) | _U64(1)
    keys |= (found // length).astype(np.uint64) << _U64(32)
    keys.sort()
    distinct = np.ones(keys.size, dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    keys = keys[distinct]
    counts = np.bincount((keys >> _U64(32)).astype(np.intp), minlength=n)
    full = counts >= k
    out = np.zeros((n, k), dtype=np.uint32)
    out[full] = keys[np.cumsum(counts)[full, None] - k + np.arange(k)]  # the low 32 bits
    return out, ~full


def _dedup_sorted(s: np.ndarray) -> np.ndarray:
    """Zero repeated values of ascending rows, then sort again (zeros move to the front)."""
    repeat = np.zeros(s.shape, dtype=bool)
    repeat[:, 1:] = s[:, 1:] == s[:, :-1]
    s[repeat] = 0
    s.sort(axis=1, kind="stable")
    return s


def read_salt(salt: bytes | str | None, salt_file: str | Path | None) -> bytes:
    """The secret salt as bytes, from the value or the file; errors never quote it.

    >>> read_salt(None, None)
    Traceback (most recent call last):
    ...
    detectors.exceptions.ParameterError: StatefulQueryDetector needs exactly one of salt= and salt_file= (a secret of at least 16 bytes).
    """  # noqa: E501
    if (salt is None) == (salt_file is None):
        raise ParameterError(
            "StatefulQueryDetector needs exactly one of salt= and salt_file= "
            "(a secret of at least 16 bytes)."
        )
    if salt_file is not None:
        try:
            secret = Path(salt_file).read_bytes().strip()
        except OSError as exc:
            raise ParameterError(f"cannot read the salt file {salt_file}: {exc.strerror}") from None
    elif isinstance(salt, str):
        secret = salt.encode()
    elif isinstance(salt, bytes):
        secret = salt
    else:
        raise ParameterError(
            f"The salt of StatefulQueryDetector must be bytes or str; got {type(salt).__name__}."
        )
    if len(secret) < 16:
        raise ParameterError(
            f"The salt of StatefulQueryDetector must be at least 16 bytes; got {len(secret)}."
        )
    return secret

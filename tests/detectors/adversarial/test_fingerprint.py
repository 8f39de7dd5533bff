"""The Blacklight fingerprint against a slow reference written from its definition.

The fingerprinter computes window hashes from prefix sums and picks the top hashes by a
partition (short rows) or a cut (long rows, with a fallback for rows that repeat
themselves); the reference hashes every window directly and takes ``np.unique`` of each row.
"""

import numpy as np
import pytest

from detectors.adversarial._fingerprint import Fingerprinter, _top_distinct

KEY = b"fingerprint-test-key"


def reference(fp: Fingerprinter, x: np.ndarray) -> np.ndarray:
    """Quantise with the secret offsets, hash each window as ``Σ_j q_{i+j} B^j mod 2**64``,
    mix (xorshift 29, multiply), keep the top 32 bits (| 1), then the ``top_k`` largest
    distinct values of each row, ascending, zeros in front."""
    values = np.empty(x.shape)
    np.multiply(x, fp.scale, out=values)  # as the fingerprinter: float32 rows stay float32
    values += fp.offsets
    q = np.floor(values).astype(np.int64).view(np.uint64)
    n_windows = x.shape[1] - fp.window + 1
    h = np.zeros((x.shape[0], n_windows), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(fp.window):
            h += q[:, j : j + n_windows] * fp.powers[j]
        mixed = (h ^ (h >> np.uint64(29))) * fp.mix
    top = ((mixed >> np.uint64(32)) | np.uint64(1)).astype(np.uint32)
    out = np.zeros((x.shape[0], fp.top_k), dtype=np.uint32)
    for i, row in enumerate(top):
        distinct = np.unique(row)[-fp.top_k :]
        out[i, fp.top_k - distinct.size :] = distinct
    return out


def awkward_rows(rng: np.random.Generator, d: int) -> np.ndarray:
    """Random rows, and rows with few distinct windows: constant, blank but for a corner,
    periodic, two-level."""
    rows = [rng.random((6, d)), np.zeros((1, d)), np.full((1, d), 0.5)]
    corner = np.zeros((1, d))
    corner[0, :7] = rng.random(7)
    periodic = np.tile(rng.random(13), d // 13 + 1)[None, :d]
    two_level = (rng.random((1, d)) > 0.97) * 1.0
    return np.concatenate([*rows, corner, periodic, two_level])


@pytest.mark.parametrize(
    "d, window, top_k",
    [
        (64, 4, 50),  # digits: every window kept
        (500, 5, 50),  # a partition of each row
        (1000, 10, 10),  # a cut, most rows
        (3072, 20, 50),  # CIFAR-10 sized: a cut
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fingerprints_match_the_reference(d, window, top_k, dtype):
    rng = np.random.default_rng(d)
    fp = Fingerprinter(KEY, d, step=50 / 255, window=window, top_k=top_k)
    x = awkward_rows(rng, d).astype(dtype)
    expected = reference(fp, x)
    np.testing.assert_array_equal(fp(x), expected)
    np.testing.assert_array_equal(fp(x[::-1])[::-1], expected)  # rows are independent
    assert (expected[6, :-1] == 0).all(), "a blank row has one distinct window"


def test_batches_longer_than_the_scratch_are_split():
    fp = Fingerprinter(KEY, 3072, step=0.2, window=20, top_k=50)
    x = np.random.default_rng(0).random((fp.rows * 2 + 3, 3072)).astype(np.float32)
    np.testing.assert_array_equal(fp(x), np.concatenate([fp(x[:50]), fp(x[50:])]))


@pytest.mark.parametrize("length, k", [(40, 50), (300, 50), (2000, 50), (2000, 5)])
def test_top_distinct_is_the_k_largest_distinct_top_bits(length, k):
    rng = np.random.default_rng(length + k)
    h = rng.integers(0, 2**64, size=(12, length), dtype=np.uint64)
    h[3] = h[3, 0]  # one value
    h[4, : length // 2] = h[4, 0]  # half repeats
    h[5] = rng.choice(h[5, :30], length)  # 30 values, each many times
    h[6] &= np.uint64(2**32 - 1)  # top bits all 0: the value 1
    top = ((h >> np.uint64(32)) | np.uint64(1)).astype(np.uint32)
    expected = np.zeros((12, k), dtype=np.uint32)
    for i, row in enumerate(top):
        distinct = np.unique(row)[-k:]
        expected[i, k - distinct.size :] = distinct
    np.testing.assert_array_equal(_top_distinct(h.copy(), k), expected)

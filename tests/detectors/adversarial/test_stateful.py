"""StatefulQueryDetector on a stream of digits queries, with query attacks inserted.

Benign traffic: every held-out digit sent three times with small natural noise by one of
eight clients, in shuffled order. Attacks: a Square run (``scoring.attacks.square``, every
query it sends recorded) by "mallory", and a boundary-style random walk (our own loop) by
"eve", each interleaved with benign traffic from its start.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from detectors.adversarial import QueryVerdicts, StatefulQueryDetector, StatefulSnapshot
from detectors.exceptions import DataError, MissingClientError, ParameterError
from scoring.attacks import square

SALT = b"test-salt-0123456789"
BATCH = 16
# 64 values per digit: Blacklight's window of 20 values (2.5% of an MNIST image, 0.7% of a
# CIFAR-10 one) would span a third of it, and any change would touch most windows.
DIGITS = {"window_size": 4}


class Recording(torch.nn.Module):
    """The model, recording every input row it is queried with."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.queries: list[np.ndarray] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.queries.extend(x.detach().reshape(x.shape[0], -1).numpy().copy())
        return self.model(x)


def square_run(model, data, n_queries=300) -> np.ndarray:
    """Every query of a Square run (L∞ eps 0.1) on the first held-out digit that resists
    at least 200 queries."""
    for i in range(20):
        recorder = Recording(model)
        x, y = torch.from_numpy(data.x_test[i : i + 1]), torch.from_numpy(data.y_test[i : i + 1])
        square(recorder, x, y, eps=0.1, n_queries=n_queries, seed=1)
        if len(recorder.queries) >= 200:
            return np.array(recorder.queries)
    raise AssertionError("no digit resisted Square for 200 queries")


def boundary_run(model, data, n_queries=300, seed=0) -> np.ndarray:
    """A boundary-attack-style walk (Brendel et al. 2018): from a digit of another class,
    step towards the target along the boundary; every candidate is one query."""
    rng = np.random.default_rng(seed)
    x, y = data.x_test[2].reshape(64), data.y_test[2]
    adv = data.x_ref[np.flatnonzero(data.y_ref != y)[0]].reshape(64).copy()
    queries = [adv.copy()]
    while len(queries) < n_queries:
        diff = x - adv
        step = rng.normal(size=64)
        step -= step @ diff / (diff @ diff + 1e-12) * diff
        step *= 0.1 * np.linalg.norm(diff) / np.linalg.norm(step)
        candidate = np.clip(adv + step + 0.1 * diff, 0, 1).astype(np.float32)
        queries.append(candidate)
        with torch.no_grad():
            if model(torch.from_numpy(candidate.reshape(1, 1, 8, 8))).argmax(1).item() != y:
                adv = candidate
    return np.array(queries)


@pytest.fixture(scope="module")
def benign(data):
    rng = np.random.default_rng(0)
    images = data.x_test.reshape(-1, 64)
    owners = rng.integers(0, 8, images.shape[0])
    copies = np.concatenate([images] * 3)
    queries = np.clip(copies + rng.normal(0, 0.02, copies.shape), 0, 1).astype(np.float32)
    clients = [f"client-{o}" for o in np.tile(owners, 3)]
    order = rng.permutation(queries.shape[0])
    return queries[order], [clients[i] for i in order]


@pytest.fixture(scope="module")
def stream(benign, data, model):
    """The benign stream with mallory's Square run from position 200 and eve's walk from
    position 700, each sending one query for every two benign ones."""
    queries, clients = list(benign[0]), list(benign[1])
    for name, run, start in (
        ("mallory", square_run(model, data), 200),
        ("eve", boundary_run(model, data), 700),
    ):
        for j, q in enumerate(run):
            queries.insert(start + 3 * j, q)
            clients.insert(start + 3 * j, name)
    return np.array(queries), clients


def replay(det, queries, clients, batch=BATCH):
    verdicts = [
        det.observe(queries[i : i + batch], clients[i : i + batch], now=0.1 * i)
        for i in range(0, len(queries), batch)
    ]
    return {f: np.concatenate([getattr(v, f) for v in verdicts]) for f in vars(verdicts[0])}


def test_benign_stream_is_not_flagged(benign):
    queries, clients = benign
    out = replay(StatefulQueryDetector(salt=SALT, **DIGITS), queries, clients)
    assert out["flagged"].mean() <= 0.001
    assert not out["global_alarm"].any()
    assert out["client_matches"].max() < 10


def test_attacks_are_flagged_early_and_attributed(stream):
    queries, clients = stream
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    out = replay(det, queries, clients)
    clients = np.array(clients)
    attackers = {"mallory", "eve"}
    benign = ~np.isin(clients, list(attackers))
    assert out["flagged"][benign].mean() <= 0.001
    assert set(clients[out["flagged"]]) == attackers
    for name in attackers:
        flags = out["flagged"][clients == name]
        first = int(np.argmax(flags))
        assert flags.any() and first < 50, f"{name} first flagged at query {first}"
        assert flags[first:].all(), "once flagged, every later query carries the flag"
    snap = det.snapshot(now=0.1 * len(queries))
    assert isinstance(snap, StatefulSnapshot)
    assert snap.clients_flagged == 2 and snap.queries_total == len(queries)
    assert snap.flagged_queries_total == int(out["flagged"].sum())
    assert snap.fingerprints <= snap.capacity and snap.clients_tracked == 10
    assert snap.seconds_total > 0


def test_an_attack_drowned_in_popular_benign_traffic_is_flagged_as_early(data, model):
    """Thirty benign queries per attack query, drawn from 100 popular digits with natural
    noise: their shared stroke hashes flood the buckets of a shared index (where this walk
    was first flagged at its 197th query), but not the attacker's own buckets."""
    rng = np.random.default_rng(1)
    popular = data.x_test.reshape(-1, 64)[:100]
    run = boundary_run(model, data)
    n_benign = 30 * len(run)
    benign = popular[rng.integers(0, 100, n_benign)] + rng.normal(0, 0.02, (n_benign, 64))
    queries = np.clip(benign, 0, 1).astype(np.float32)
    clients = [f"app-{i}" for i in rng.integers(0, 20, n_benign)]
    at = np.sort(rng.choice(np.arange(1000, n_benign), len(run), replace=False))
    queries = np.insert(queries, at, run, axis=0)
    clients = np.insert(np.array(clients, dtype=object), at, "mallory").tolist()
    out = replay(StatefulQueryDetector(salt=SALT, **DIGITS), queries, clients, batch=100)
    is_mallory = np.array(clients) == "mallory"
    flags = out["flagged"][is_mallory]
    assert flags.any() and int(np.argmax(flags)) < 50, f"first flag {np.argmax(flags)}"
    assert out["flagged"][~is_mallory].mean() <= 0.001


def test_an_attack_spread_over_many_clients_raises_the_global_signal(benign, data, model):
    run = square_run(model, data)
    sybils = [f"sybil-{j % 60}" for j in range(len(run))]
    queries = np.concatenate([benign[0][:300], run])
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    out = replay(det, queries, benign[1][:300] + sybils)
    assert not out["global_alarm"][:300].any()
    alarms = out["global_alarm"][300:]
    assert alarms.any() and int(np.argmax(alarms)) < 100
    assert not out["flagged"][300:].any(), "no sybil sends enough to be flagged on its own"


def test_flags_expire_after_ttl_and_fingerprints_age_out(stream):
    queries, clients = stream
    det = StatefulQueryDetector(salt=SALT, ttl=60.0, **DIGITS)
    replay(det, queries, clients)
    end = 0.1 * len(queries)
    assert det.snapshot(now=end).clients_flagged >= 1
    assert det.snapshot(now=end + 3600).clients_flagged == 0
    assert det.snapshot(now=end + 3600).fingerprints == 0
    flagged = det.update(queries[:1], ["mallory"], now=end + 3600)
    assert not flagged.any()


def test_memory_is_bounded(benign):
    queries, clients = benign
    det = StatefulQueryDetector(salt=SALT, max_fingerprints=100, max_clients=3, **DIGITS)
    before = det.snapshot(now=0).memory_bytes
    replay(det, queries, clients)
    snap = det.snapshot(now=0)
    assert snap.fingerprints <= 100 and snap.clients_tracked == 3
    assert snap.memory_bytes == before


def test_single_rows_and_batches_agree(stream):
    queries, clients = stream
    a = replay(StatefulQueryDetector(salt=SALT, **DIGITS), queries[:600], clients[:600], batch=1)
    b = replay(StatefulQueryDetector(salt=SALT, **DIGITS), queries[:600], clients[:600], batch=64)
    # A batch compares rows of one chunk directly, where single rows go through the index,
    # whose buckets keep the 32 latest postings: the hashes of blank strokes, in most digits,
    # are found only in the latest 32. So batches may count a few more matches, never fewer.
    for counts in ("client_matches", "global_matches"):
        assert (a[counts] <= b[counts]).all() and (a[counts] == b[counts]).mean() > 0.8
        below = b[counts] < 10  # below the client threshold, where it matters
        assert (b[counts] - a[counts])[below].max() <= 1
    np.testing.assert_array_equal(a["flagged"], b["flagged"])


@pytest.mark.parametrize("capacity", [100_000, 40])
def test_a_batch_is_answered_as_its_chunks_in_turn(stream, capacity):
    """A call answers its rows in chunks of 16, each against the index as the chunks before it
    left it (a capacity of 40 overwrites stored queries within a call): exactly as calls of
    one chunk each, at the same time."""
    queries, clients = stream[0][:800], stream[1][:800]
    whole = StatefulQueryDetector(salt=SALT, max_fingerprints=capacity, **DIGITS)
    chunked = StatefulQueryDetector(salt=SALT, max_fingerprints=capacity, **DIGITS)
    for i in range(0, 800, 100):
        v = whole.observe(queries[i : i + 100], clients[i : i + 100], now=i)
        ends = [(j, min(j + 16, i + 100)) for j in range(i, i + 100, 16)]
        parts = [chunked.observe(queries[j:k], clients[j:k], now=i) for j, k in ends]
        for name in vars(v):
            got, expected = getattr(v, name), np.concatenate([getattr(p, name) for p in parts])
            np.testing.assert_array_equal(got, expected, err_msg=f"{name}, rows {i}+")
    counts = [replace(d.snapshot(now=800), seconds_total=0.0) for d in (whole, chunked)]
    assert counts[0] == counts[1]


def test_the_salt_changes_fingerprints_and_never_shows(stream, tmp_path):
    queries, clients = stream
    secret_file = tmp_path / "salt"
    secret_file.write_bytes(b"  another-secret-salt\n")
    det = StatefulQueryDetector(salt_file=secret_file, **DIGITS)
    assert "another" not in repr(det) and "salt=<hidden>" in repr(det)
    assert "test-salt" not in repr(StatefulQueryDetector(salt=SALT))
    out = replay(det, queries, clients)
    assert set(np.array(clients)[out["flagged"]]) == {"mallory", "eve"}
    with pytest.raises(ParameterError, match="at least 16 bytes; got 5") as err:
        StatefulQueryDetector(salt="short")
    assert "short" not in str(err.value)
    with pytest.raises(ParameterError, match="exactly one of salt= and salt_file="):
        StatefulQueryDetector()
    with pytest.raises(ParameterError, match="cannot read the salt file"):
        StatefulQueryDetector(salt_file=tmp_path / "missing")


def test_missing_client_ids_share_a_pool_or_are_refused(stream):
    queries, _ = stream
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    assert det.update(queries[:4], [None, "", "a", None], now=0).shape == (4,)
    assert det.update(queries[4:6], now=1).shape == (2,)
    strict = StatefulQueryDetector(salt=SALT, missing_client="error")
    with pytest.raises(MissingClientError, match="row 1 has no client id"):
        strict.update(queries[:2], ["a", None], now=0)
    assert isinstance(MissingClientError("x"), DataError)


@pytest.mark.parametrize(
    "x, ids, message",
    [
        (np.full((2, 64), np.nan), ["a", "b"], "NaN or infinite"),
        (np.zeros((2, 63)), ["a", "b"], "63 values per row, but StatefulQueryDetector has seen 64"),
        (np.zeros((2, 64)), ["a"], "got 1 client ids for 2 rows"),
        (np.zeros((2, 64)), ["a", 7], "client id of row 1 must be a str or None; got int"),
        (np.zeros(64), ["a"], "shape"),
    ],
)
def test_bad_input(x, ids, message):
    det = StatefulQueryDetector(salt=SALT)
    det.update(np.zeros((1, 64)), ["a"], now=0)
    with pytest.raises(DataError, match=message):
        det.update(x, ids, now=1)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"match_threshold": 60}, "must be at most top_k=50"),
        ({"client_threshold": 40}, "must be at most 32"),
        ({"step": 0.0}, "'step' parameter of StatefulQueryDetector must be a float in"),
        ({"missing_client": "drop"}, "'missing_client'"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ParameterError, match=message):
        StatefulQueryDetector(salt=SALT, **params)


def test_observe_returns_typed_verdicts(stream):
    queries, clients = stream
    v = StatefulQueryDetector(salt=SALT).observe(queries[:3], clients[:3], now=0)
    assert isinstance(v, QueryVerdicts)
    assert v.flagged.dtype == bool and v.client_matches.dtype == np.int64


def test_index_keeps_the_latest_postings_and_slots():
    from detectors.adversarial._query_index import QueryIndex

    prints = np.full((40, 1), 7, dtype=np.uint32)
    digests = np.arange(40, dtype=np.uint64) << np.uint64(8)  # distinct in their top 60 bits
    index = QueryIndex(capacity=1000, top_k=1, match_threshold=1)
    own = prints * np.uint32(3)  # keyed by the owner: another hash, another bucket
    own_counts, counts = index.observe(prints, own, digests, [0] * 40, now=0.0, oldest=-1.0)
    assert counts.tolist() == own_counts.tolist() == list(range(40))
    probe = (prints[:1], own[:1], np.array([99 << 8], dtype=np.uint64), [0])
    assert index.observe(*probe, now=1.0, oldest=-1.0)[1].tolist() == [32]  # bucket ring
    small = QueryIndex(capacity=10, top_k=1, match_threshold=1)
    small.observe(prints, own, digests, [0] * 40, now=0.0, oldest=-1.0)
    assert small.observe(*probe, now=1.0, oldest=-1.0)[1].tolist() == [10]  # slot ring
    later = (prints[:1], own[:1], np.array([100 << 8], dtype=np.uint64), [0])
    assert small.observe(*later, now=5.0, oldest=0.5)[1].tolist() == [1]  # time window
    stranger = (prints[:1], prints[:1] * np.uint32(5), np.array([101 << 8], np.uint64), [1])
    assert small.observe(*stranger, now=5.0, oldest=0.5) == (0, 2)  # own: none of client 0's


def test_a_restored_state_answers_as_the_detector_that_saved_it(stream, tmp_path):
    queries, clients = stream
    half = 640
    going_on = StatefulQueryDetector(salt=SALT, **DIGITS)
    first = replay(going_on, queries[:half], clients[:half])
    assert first["flagged"].any(), "mallory is flagged before the restart"
    path = going_on.save(tmp_path / "state" / "stateful.npz")
    restarted = StatefulQueryDetector(salt=SALT, client_threshold=10, ttl=3600.0, **DIGITS)
    restarted.restore(path)
    later = [
        (q.observe(queries[i : i + BATCH], clients[i : i + BATCH], now=0.1 * i))
        for q in (going_on, restarted)
        for i in range(half, len(queries), BATCH)
    ]
    n = len(later) // 2
    for a, b in zip(later[:n], later[n:], strict=True):
        for name in vars(a):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    end = 0.1 * len(queries)
    snapshots = [replace(d.snapshot(end), seconds_total=0) for d in (restarted, going_on)]
    assert snapshots[0] == snapshots[1]


def test_a_saved_state_holds_no_client_id_nor_salt(stream, tmp_path):
    queries, clients = stream
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    replay(det, queries[:300], clients[:300])
    raw = det.save(tmp_path / "s.npz").read_bytes()
    assert b"mallory" not in raw and b"client-" not in raw and SALT not in raw


def test_restore_refuses_another_salt_or_layout_and_leaves_the_detector_as_it_was(stream, tmp_path):
    queries, clients = stream
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    replay(det, queries[:300], clients[:300])
    path = det.save(tmp_path / "s.npz")
    other = StatefulQueryDetector(salt=b"another-salt-0123456789", **DIGITS)
    with pytest.raises(DataError, match="another salt"):
        other.restore(path)
    wider = StatefulQueryDetector(salt=SALT, window_size=8)
    replay(wider, queries[:10], clients[:10])
    before = wider.snapshot(now=0)
    with pytest.raises(DataError, match=r"window_size 4 \(now 8\)"):
        wider.restore(path)
    assert wider.snapshot(now=0) == before
    (tmp_path / "junk.npz").write_bytes(b"not a state")
    with pytest.raises(DataError, match="not a saved stateful-detector state"):
        det.restore(tmp_path / "junk.npz")
    from detectors.adversarial._state_file import read_state, write_state

    meta, arrays = read_state(path)
    del meta["counts"]
    write_state(tmp_path / "damaged.npz", meta, arrays)
    with pytest.raises(DataError, match="damaged state"):
        det.restore(tmp_path / "damaged.npz")


def test_a_young_state_file_holds_only_the_index_rows_in_use(stream, tmp_path):
    queries, clients = stream
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    replay(det, queries[:300], clients[:300])
    size = det.save(tmp_path / "s.npz").stat().st_size
    memory = det.snapshot(now=0).memory_bytes
    assert memory > 100e6  # the default index: 100,000 queries
    assert size < memory / 20, f"{size} bytes saved of an index of {memory}"


def test_a_state_of_the_first_format_which_saved_the_whole_table_is_still_read(stream, tmp_path):
    import json

    queries, clients = stream
    saving = StatefulQueryDetector(salt=SALT, **DIGITS)
    replay(saving, queries[:300], clients[:300])
    path = saving.save(tmp_path / "v2.npz")
    with np.load(path) as data:
        meta = json.loads(data["meta"].tobytes())
    index = saving._index
    meta["format_version"] = 1
    dense = {name: getattr(index, name) for name in ("times", "owners", "digests", "buckets")}
    with open(tmp_path / "v1.npz", "wb") as f:
        np.savez(
            f,
            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            cursor=index.cursor,
            stored=np.array(index.stored),
            **dense,
        )
    answers = []
    for name in ("v1.npz", "v2.npz"):
        det = StatefulQueryDetector(salt=SALT, **DIGITS)
        det.restore(tmp_path / name)
        np.testing.assert_array_equal(det._index.buckets, index.buckets)
        np.testing.assert_array_equal(det._index.cursor, index.cursor)
        answers.append(det.observe(queries[300:340], clients[300:340], now=40.0))
    first, second = answers
    for name in vars(first):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_restore_refuses_index_rows_the_index_does_not_have(stream, tmp_path):
    from detectors.adversarial._state_file import read_state, write_state

    queries, clients = stream
    det = StatefulQueryDetector(salt=SALT, **DIGITS)
    replay(det, queries[:100], clients[:100])
    meta, arrays = read_state(det.save(tmp_path / "s.npz"))
    arrays["bucket_rows"] = arrays["bucket_rows"] + det._index.n_buckets
    write_state(tmp_path / "shifted.npz", meta, arrays)
    before = det.snapshot(now=0)
    with pytest.raises(DataError, match="bucket rows up to"):
        det.restore(tmp_path / "shifted.npz")
    assert det.snapshot(now=0) == before

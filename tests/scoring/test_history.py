"""Score history in SQLite: rows, trends and the significant-drop test."""

import math
import sqlite3

import pytest
from scipy import stats

from scoring.exceptions import DataError, ParameterError
from scoring.history import drop_test, record, trend
from scoring.report import AttackScore, RobustnessReport


def _report(acc_by_eps, *, n=200, model="m", config=None):
    results = tuple(
        AttackScore("pgd", "linf", e, a, (a - 0.05, a + 0.05), 0.1, round(a * n), n, 1.0, 10, 5)
        for e, a in acc_by_eps.items()
    )
    return RobustnessReport(
        model,
        n,
        "provided",
        0.95,
        (0.9, 0.97),
        "linf",
        results,
        (),
        None,
        None,
        "cpu",
        "fp32",
        0,
        {"torch": "x"},
        config or {"steps": 10},
        (),
        1.0,
        0,
        0,
    )


def test_one_row_per_result_with_every_column(tmp_path):
    db = tmp_path / "h.db"
    assert record(db, _report({0.03: 0.8, 0.06: 0.5}), version="v1", at=100.0) == 2
    with sqlite3.connect(db) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(scores)")]
        assert cols == [
            "id",
            "time",
            "model",
            "version",
            "attack",
            "norm",
            "eps",
            "n",
            "clean_accuracy",
            "robust_accuracy",
            "ci_low",
            "ci_high",
            "config_hash",
        ]
    (row,) = trend(db, "m", eps=0.06)
    assert (row.time, row.version, row.attack, row.n, row.robust_accuracy) == (
        100.0,
        "v1",
        "pgd",
        200,
        0.5,
    )
    assert (row.ci_low, row.ci_high) == pytest.approx((0.45, 0.55))
    assert row.config_hash == _report({}).config_hash


def test_trend_is_ordered_and_filtered(tmp_path):
    db = tmp_path / "h.db"
    record(db, _report({0.03: 0.7}), at=3.0)
    record(db, _report({0.03: 0.9}), at=1.0)
    record(db, _report({0.03: 0.8}, model="other"), at=2.0)
    assert [r.robust_accuracy for r in trend(db, "m")] == [0.9, 0.7]
    assert trend(db, "m", attack="fgsm") == () and trend(db, "nobody") == ()
    assert len(trend(db, "other", norm="linf", eps=0.03)) == 1


def test_drop_test_against_the_z_test_by_hand(tmp_path):
    db = tmp_path / "h.db"
    record(db, _report({0.03: 0.80}), at=1.0)
    record(db, _report({0.03: 0.78}), at=2.0)
    record(db, _report({0.03: 0.70}), at=3.0)
    t = drop_test(db, "m", "pgd", "linf", 0.03)  # 160/200 -> 140/200
    pooled = 300 / 400
    z = (0.70 - 0.80) / math.sqrt(pooled * (1 - pooled) * (2 / 200))
    assert t.z == pytest.approx(z) and t.p_value == pytest.approx(stats.norm.cdf(z))
    assert t.significant and t.baseline.robust_accuracy == 0.80
    prev = drop_test(db, "m", "pgd", "linf", 0.03, baseline="previous", alpha=0.01)
    assert prev.baseline.robust_accuracy == 0.78 and prev.p_value > t.p_value  # 156 -> 140
    assert t.p_value < 0.05 and not prev.significant  # p = 0.034 is not below 0.01
    assert not drop_test(db, "m", "pgd", "linf", 0.03, alpha=0.001).significant  # p = 0.0105


def test_drop_test_compares_like_with_like(tmp_path):
    db = tmp_path / "h.db"
    record(db, _report({0.03: 0.9}, config={"steps": 100}), at=1.0)
    record(db, _report({0.03: 0.8}), at=2.0)
    record(db, _report({0.03: 0.5}), at=3.0)
    t = drop_test(db, "m", "pgd", "linf", 0.03, baseline="best")
    assert t.baseline.robust_accuracy == 0.8  # the 0.9 came from another config
    assert (
        drop_test(
            db, "m", "pgd", "linf", 0.03, baseline="best", same_config=False
        ).baseline.robust_accuracy
        == 0.9
    )


def test_drop_test_errors(tmp_path):
    db = tmp_path / "h.db"
    record(db, _report({0.03: 0.9}), at=1.0)
    with pytest.raises(DataError, match="needs two scores"):
        drop_test(db, "m", "pgd", "linf", 0.03)
    with pytest.raises(ParameterError, match="baseline"):
        drop_test(db, "m", "pgd", "linf", 0.03, baseline="median")
    with pytest.raises(ParameterError, match="alpha"):
        drop_test(db, "m", "pgd", "linf", 0.03, alpha=0)

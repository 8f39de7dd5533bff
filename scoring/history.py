"""Robustness scores over time in SQLite: :func:`record`, :func:`trend`, :func:`drop_test`.

One row per (time, model, version, attack, norm, eps) of a report, with ``n``, clean and
robust accuracy, the robust accuracy's 95% Wilson interval and the hash of the config that
produced it. Each call opens and closes its own connection to the file its caller names.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scoring.exceptions import DataError, ParameterError
from scoring.report import RobustnessReport
from scoring.stats import two_proportion_z_test

__all__ = ["DropTest", "ScoreRow", "drop_test", "record", "trend"]

_COLUMNS = (
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
)
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT, {", ".join(_COLUMNS)})"""


@dataclass(frozen=True)
class ScoreRow:
    """One stored score."""

    time: float
    model: str
    version: str
    attack: str
    norm: str
    eps: float
    n: int
    clean_accuracy: float
    robust_accuracy: float
    ci_low: float
    ci_high: float
    config_hash: str

    @property
    def n_robust(self) -> int:
        return round(self.robust_accuracy * self.n)


@dataclass(frozen=True)
class DropTest:
    """Whether the newest score is significantly below the baseline (one-sided z test)."""

    significant: bool
    z: float
    p_value: float
    alpha: float
    baseline: ScoreRow
    newest: ScoreRow


@contextlib.contextmanager
def _connect(db: str | Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(db)
    try:
        con.execute(_SCHEMA)
        yield con
        con.commit()
    finally:
        con.close()


def record(
    db: str | Path, report: RobustnessReport, *, version: str = "", at: float | None = None
) -> int:
    """Append one row per result of ``report``; return how many were written.

    ``at`` is the Unix time of the evaluation (now when omitted).
    """
    when = time.time() if at is None else float(at)
    rows = [
        (
            when,
            report.model,
            version,
            s.attack,
            s.norm,
            s.eps,
            report.n,
            report.clean_accuracy,
            s.robust_accuracy,
            s.ci95[0],
            s.ci95[1],
            report.config_hash,
        )
        for s in report.results
    ]
    with _connect(db) as con:
        con.executemany(
            f"INSERT INTO scores ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 12)})", rows
        )
    return len(rows)


def models(db: str | Path) -> tuple[str, ...]:
    """The names of the models that have scores in ``db``, sorted."""
    with _connect(db) as con:
        return tuple(m for (m,) in con.execute("SELECT DISTINCT model FROM scores ORDER BY model"))


def trend(
    db: str | Path,
    model: str,
    *,
    attack: str | None = None,
    norm: str | None = None,
    eps: float | None = None,
) -> tuple[ScoreRow, ...]:
    """Scores of ``model``, oldest first, optionally for one attack, norm and eps.

    Examples
    --------
    >>> import tempfile, os
    >>> from scoring.report import AttackScore
    >>> def report(acc):
    ...     s = AttackScore("pgd", "linf", 0.1, acc, (0.0, 1.0), None, 0, 0, 0.0, 0, 0)
    ...     return RobustnessReport("m", 200, "provided", 0.9, (0.8, 1.0), "linf", (s,), (),
    ...         None, None, "cpu", "fp32", 0, {}, {}, (), 0.0, 0, 0)
    >>> db = os.path.join(tempfile.mkdtemp(), "scores.db")
    >>> record(db, report(0.80), version="v1", at=1.0), record(db, report(0.60), at=2.0)
    (1, 1)
    >>> [r.robust_accuracy for r in trend(db, "m", attack="pgd")]
    [0.8, 0.6]
    >>> t = drop_test(db, "m", "pgd", "linf", 0.1)
    >>> t.significant, round(t.p_value, 5)
    (True, 1e-05)
    """
    where, args = ["model = ?"], [model]
    for col, val in (("attack", attack), ("norm", norm)):
        if val is not None:
            where.append(f"{col} = ?")
            args.append(val)
    with _connect(db) as con:
        cur = con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM scores WHERE {' AND '.join(where)} "
            "ORDER BY time, id",
            args,
        )
        rows = [ScoreRow(*r) for r in cur.fetchall()]
    if eps is not None:
        rows = [r for r in rows if math.isclose(r.eps, eps, rel_tol=1e-9)]
    return tuple(rows)


def drop_test(
    db: str | Path,
    model: str,
    attack: str,
    norm: str,
    eps: float,
    *,
    baseline: str = "first",
    alpha: float = 0.05,
    same_config: bool = True,
) -> DropTest:
    """Is the newest robust accuracy significantly lower than the baseline's?

    A one-sided pooled two-proportion z test on the robust counts (see
    :func:`scoring.stats.two_proportion_z_test`), significant when ``p < alpha``.

    Parameters
    ----------
    baseline : {"first", "previous", "best"}, default="first"
        The oldest score, the one just before the newest, or the highest earlier one.
    alpha : float, default=0.05
        Significance level.
    same_config : bool, default=True
        Compare only with scores produced by the newest score's config hash.
    """
    if baseline not in ("first", "previous", "best"):
        raise ParameterError(f"baseline must be 'first', 'previous' or 'best'; got {baseline!r}.")
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be a float in (0, 1); got {alpha!r}.")
    rows = trend(db, model, attack=attack, norm=norm, eps=eps)
    if rows and same_config:
        rows = tuple(r for r in rows if r.config_hash == rows[-1].config_hash)
    if len(rows) < 2:
        raise DataError(
            f"drop_test needs two scores of {model!r} for ({attack}, {norm}, {eps:g}) with the "
            f"same config; found {len(rows)}. Record more, or pass same_config=False."
        )
    newest, earlier = rows[-1], rows[:-1]
    base = {"first": earlier[0], "previous": earlier[-1]}.get(baseline) or max(
        earlier, key=lambda r: r.robust_accuracy
    )
    z, p = two_proportion_z_test(base.n_robust, base.n, newest.n_robust, newest.n)
    return DropTest(p < alpha, z, p, alpha, base, newest)

"""What :func:`scoring.evaluate` returns: :class:`RobustnessReport`, its JSON and Markdown.

``report.to_dict()`` is the object ``robustwatch score --json`` writes (DESIGN.md): ``model``,
``n``, ``labels``, ``clean_accuracy``, ``results`` (one ``{attack, norm, eps,
robust_accuracy, ci95, attack_success_rate, seconds, forward_passes, backward_passes}`` per
attack and eps), ``eps50``, ``device``, ``precision``, ``seed``, ``versions``; plus
``norm``, ``clean_ci95``, ``curve``, ``median_cw_l2``, ``warnings``, ``config``,
``config_hash`` and the total cost.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.exceptions import MissingDependencyError, ParameterError

__all__ = ["AttackScore", "CurvePoint", "RobustnessReport", "save_curve_png", "to_markdown"]


@dataclass(frozen=True)
class AttackScore:
    """Robust accuracy of one attack at one eps, with its 95% Wilson interval and cost.

    ``attack_success_rate`` is the fraction broken among the ``n_correct`` points the model
    got right (None when there are none); costs are rows forwarded and back-propagated.
    """

    attack: str
    norm: str
    eps: float
    robust_accuracy: float
    ci95: tuple[float, float]
    attack_success_rate: float | None
    n_robust: int
    n_correct: int
    seconds: float
    forward_passes: int
    backward_passes: int

    def to_dict(self) -> dict[str, Any]:
        keys = ("attack", "norm", "eps", "robust_accuracy", "ci95", "attack_success_rate")
        d: dict[str, Any] = {k: getattr(self, k) for k in keys}
        d["ci95"] = list(self.ci95)
        d.update(
            seconds=self.seconds,
            forward_passes=self.forward_passes,
            backward_passes=self.backward_passes,
        )
        return d


@dataclass(frozen=True)
class CurvePoint:
    """Per-point worst case over every attack at one eps: robust under all of them."""

    eps: float
    robust_accuracy: float
    ci95: tuple[float, float]


@dataclass(frozen=True)
class RobustnessReport:
    """Clean and robust accuracy of a model on N points, with the cost and provenance.

    Examples
    --------
    >>> s = AttackScore("pgd", "linf", 0.1, 0.5, (0.2, 0.8), 0.5, 5, 10, 0.1, 300, 200)
    >>> r = RobustnessReport(model="m", n=10, labels="provided", clean_accuracy=1.0,
    ...     clean_ci95=(0.72, 1.0), norm="linf", results=(s,),
    ...     curve=(CurvePoint(0.1, 0.5, (0.2, 0.8)),), eps50=0.1, median_cw_l2=None,
    ...     device="cpu", precision="fp32", seed=0, versions={"torch": "2"}, config={},
    ...     warnings=(), seconds=0.1, forward_passes=310, backward_passes=200)
    >>> r.robust_accuracy("pgd", "linf", 0.1), r.to_dict()["results"][0]["ci95"]
    (0.5, [0.2, 0.8])
    """

    model: str
    n: int
    labels: str
    clean_accuracy: float
    clean_ci95: tuple[float, float]
    norm: str
    results: tuple[AttackScore, ...]
    curve: tuple[CurvePoint, ...]
    eps50: float | None
    median_cw_l2: float | None
    device: str
    precision: str
    seed: int
    versions: Mapping[str, str]
    config: Mapping[str, Any]
    warnings: tuple[str, ...]
    seconds: float
    forward_passes: int
    backward_passes: int

    def result(self, attack: str, norm: str, eps: float) -> AttackScore:
        """The :class:`AttackScore` of ``(attack, norm, eps)``; eps matched to 1e-9 relative."""
        for s in self.results:
            if s.attack == attack and s.norm == norm and math.isclose(s.eps, eps, rel_tol=1e-9):
                return s
        have = ", ".join(f"({s.attack!r}, {s.norm!r}, {s.eps:g})" for s in self.results)
        raise ParameterError(f"No result for ({attack!r}, {norm!r}, {eps:g}); have: {have}.")

    def robust_accuracy(self, attack: str, norm: str, eps: float) -> float:
        """Robust accuracy of ``attack`` at ``eps`` in ``norm``."""
        return self.result(attack, norm, eps).robust_accuracy

    @property
    def config_hash(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON of ``config``."""
        blob = json.dumps(self.config, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The ``score --json`` object (JSON-serialisable)."""
        return {
            "model": self.model,
            "n": self.n,
            "labels": self.labels,
            "clean_accuracy": self.clean_accuracy,
            "results": [s.to_dict() for s in self.results],
            "eps50": self.eps50,
            "device": self.device,
            "precision": self.precision,
            "seed": self.seed,
            "versions": dict(self.versions),
            "norm": self.norm,
            "clean_ci95": list(self.clean_ci95),
            "curve": [
                {"eps": c.eps, "robust_accuracy": c.robust_accuracy, "ci95": list(c.ci95)}
                for c in self.curve
            ],
            "median_cw_l2": self.median_cw_l2,
            "warnings": list(self.warnings),
            "config": dict(self.config),
            "config_hash": self.config_hash,
            "seconds": self.seconds,
            "forward_passes": self.forward_passes,
            "backward_passes": self.backward_passes,
        }

    def to_markdown(self) -> str:
        """Short Markdown summary; see :func:`to_markdown`."""
        return to_markdown(self)


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def to_markdown(report: RobustnessReport) -> str:
    """A heading, one line of headline numbers, a table of results and the warnings."""
    eps50 = "not reached" if report.eps50 is None else f"{report.eps50:.4g}"
    lines = [
        f"### Robustness of `{report.model}` (n={report.n}, labels: {report.labels})",
        "",
        f"Clean accuracy {report.clean_accuracy:.3f} {_ci(report.clean_ci95)}; "
        f"eps50 ({report.norm}) {eps50}; {report.device}, {report.precision}, "
        f"seed {report.seed}, {report.seconds:.1f} s.",
        "",
        "| attack | norm | eps | robust accuracy | 95% CI | success rate | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.results:
        rate = "-" if s.attack_success_rate is None else f"{s.attack_success_rate:.3f}"
        lines.append(
            f"| {s.attack} | {s.norm} | {s.eps:.4g} | {s.robust_accuracy:.3f} | {_ci(s.ci95)} "
            f"| {rate} | {s.seconds:.2f} |"
        )
    if report.median_cw_l2 is not None:
        lines += ["", f"Median minimal L2 perturbation (C&W): {report.median_cw_l2:.4g}."]
    lines += [""] + [f"- warning: {w}" for w in report.warnings]
    return "\n".join(lines).rstrip() + "\n"


def save_curve_png(report: RobustnessReport, path: str | Path) -> Path:
    """Plot robust accuracy against eps, one line per attack plus the worst case.

    Needs matplotlib (optional); raises :class:`MissingDependencyError` without it. Draws on
    a private ``Figure`` with the Agg canvas, leaving pyplot's global state alone.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "save_curve_png needs matplotlib: pip install matplotlib, or skip the PNG."
        ) from exc
    fig = Figure(figsize=(5, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for attack in dict.fromkeys(s.attack for s in report.results):
        pts = [(0.0, report.clean_accuracy)] + [
            (s.eps, s.robust_accuracy) for s in report.results if s.attack == attack
        ]
        ax.plot(*zip(*pts, strict=True), marker="o", label=attack)
    worst = [(0.0, report.clean_accuracy)] + [(c.eps, c.robust_accuracy) for c in report.curve]
    ax.plot(*zip(*worst, strict=True), "k--", label="worst case")
    ax.set(xlabel=f"eps ({report.norm})", ylabel="robust accuracy", ylim=(0, 1.02))
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return Path(path)

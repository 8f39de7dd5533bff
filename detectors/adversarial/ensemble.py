"""Any-member-fires ensemble with a shared false-positive budget: :class:`DetectorEnsemble`."""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from detectors._validation import Constraint, Interval, check_rows
from detectors.adversarial.base import FPR, InputDetector
from detectors.exceptions import DataError, ParameterError

__all__ = ["DetectorEnsemble"]


class DetectorEnsemble(InputDetector):
    """Flags an input when any member flags it, at a false-positive rate ``fpr`` overall.

    Members are fitted on one part of the reference. On the other part (on all of it when no
    member learns more than its threshold, see ``calibration_fraction``), each member's scores
    define its empirical tail: ``F_i(s) = #{reference scores of member i < s} / n``. The
    ensemble score is ``max_i F_i(s_i(x))``, and its threshold ``r`` the ``(1 - fpr)``
    conformal quantile of that score on the calibration part. Flagging ``score > r`` is
    flagging when any member's score exceeds its own ``(r)``-quantile: the budget is split
    equally between members (each gets the rate ``1 - r``), and because ``r`` is calibrated
    on the union, the ensemble meets ``fpr`` however correlated the members are, where a
    Bonferroni split (``fpr / m`` each) would fall short of it.

    Parameters
    ----------
    detectors : sequence of InputDetector
        Unfitted members, all reading the same inputs. Their own ``fpr`` only sets their
        stand-alone ``threshold_``; the ensemble sets the thresholds it applies.
    fpr : float, default=0.05
        Target false-positive rate of the ensemble on clean inputs, in (0, 1).
    calibration_fraction : float, default=0.5
        Share of the reference held out to calibrate, in (0, 1), when a member learns from
        the reference more than its threshold (Mahalanobis' Gaussians, squeezing quantiles):
        its scores on data it was fitted on would be optimistic. Otherwise (squeezing images,
        noise consistency, the output baselines) members are fitted and the ensemble
        calibrated on all of the reference, for a less variable threshold.
    seed : int, default=0
        Seeds the fit/calibration split.

    Attributes
    ----------
    reference_scores_ : dict of str to ndarray
        Sorted calibration scores of each member (keys ``"0"``, ``"1"``, ...).
    member_thresholds_ : ndarray of shape (n_members,)
        Score above which each member fires inside the ensemble.
    member_fpr_ : float
        Each member's share of the budget, ``1 - r``.
    threshold_ : float
        ``r``.

    Examples
    --------
    >>> from detectors.outlier import EnergyScore, MaxSoftmax
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(6000, 4)) + [3.0, 0.0, 0.0, 0.0]
    >>> ens = DetectorEnsemble([MaxSoftmax(), EnergyScore()], fpr=0.05).fit(logits[:2000])
    >>> round(ens.member_fpr_, 3), float(ens.predict(logits[2000:]).mean())
    (0.028, 0.04425)

    Each member gets 2.8%, more than Bonferroni's 2.5%: the two scores are correlated.
    """

    name = "ensemble"
    _parameter_constraints: ClassVar[dict[str, Constraint | list[Constraint]]] = {
        "fpr": FPR,
        "calibration_fraction": Interval(Real, 0, 1, closed="neither"),
        "seed": Interval(Integral, 0, None),
    }
    _runtime_params = ("detectors",)

    def __init__(
        self,
        detectors: list[InputDetector] | tuple[InputDetector, ...],
        fpr: float = 0.05,
        calibration_fraction: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.detectors = list(detectors) if isinstance(detectors, list | tuple) else detectors
        self.fpr = fpr
        self.calibration_fraction = calibration_fraction
        self.seed = seed
        self._validate_params()
        if not (
            isinstance(self.detectors, list)
            and self.detectors
            and all(isinstance(d, InputDetector) for d in self.detectors)
        ):
            raise ParameterError(
                "The 'detectors' parameter of DetectorEnsemble must be a "
                f"non-empty list of InputDetector. Got {detectors!r} instead."
            )

    def get_params(self) -> dict[str, Any]:
        return {"detectors": self.detectors, **super().get_params()}

    def _check(self, x: Any, name: str, fitting: bool = False) -> np.ndarray:
        return check_rows(x, name=name, caller=type(self).__name__)

    def _fit(self, x: np.ndarray, y: Any) -> np.ndarray:
        cal = fit = np.arange(x.shape[0])
        if any(det._learns_from(x) for det in self.detectors):
            perm = np.random.default_rng(self.seed).permutation(x.shape[0])
            n_cal = round(self.calibration_fraction * x.shape[0])
            cal, fit = np.sort(perm[:n_cal]), np.sort(perm[n_cal:])
        y_fit = None if y is None else np.asarray(y)[fit]
        for det in self.detectors:
            det.fit(x[fit], y_fit)
        scores = [det.score(x[cal]) for det in self.detectors]
        self.reference_scores_ = {str(i): np.sort(s) for i, s in enumerate(scores)}
        return self._combine(scores)

    def _combine(self, scores: list[np.ndarray]) -> np.ndarray:
        tails = [
            np.searchsorted(self.reference_scores_[str(i)], s, side="left") / s_ref.size
            for i, (s, s_ref) in enumerate(zip(scores, self._refs(), strict=True))
        ]
        return np.max(tails, axis=0)

    def _refs(self) -> list[np.ndarray]:
        return [self.reference_scores_[str(i)] for i in range(len(self.detectors))]

    def _restore(self) -> None:
        for det in self.detectors:
            det._restore()  # random members restart from their seed, as after their own fit
        refs = self._refs()
        idx = [int(np.floor(self.threshold_ * r.size + 1e-9)) for r in refs]
        self.member_thresholds_ = np.array(
            [r[i] if i < r.size else np.inf for r, i in zip(refs, idx, strict=True)]
        )
        self.member_fpr_ = 1.0 - self.threshold_

    def _score(self, x: np.ndarray) -> np.ndarray:
        return self._combine([det.score(x) for det in self.detectors])

    def save(self, directory: str | Path) -> Path:
        """Write the members to ``member-<i>/`` sub-directories and the ensemble beside them."""
        path = super().save(directory)
        for i, det in enumerate(self.detectors):
            det.save(path / f"member-{i}")
        return path

    @classmethod
    def _load_components(cls, path: Path, runtime: dict[str, Any]) -> dict[str, Any]:
        members = sorted(path.glob("member-*"), key=lambda p: int(p.name.split("-")[1]))
        if not members:
            raise DataError(f"{path} holds a DetectorEnsemble without its member-<i> folders.")
        return {"detectors": [InputDetector.load(p, **runtime) for p in members]}

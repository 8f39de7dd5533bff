"""The adapters behind :func:`detectors.drift.alibi.load_alibi`: an alibi-detect drift detector
as :class:`AlibiDrift` (``test(x) -> DriftResult``) or :class:`AlibiDriftOnline`
(``update(x) -> OnlineDriftResult``).

They only call the wrapped detector's ``predict`` and read its attributes (``x_ref``,
``input_shape``, ``p_val``, ``correction``, ``ert``, ``t``): alibi-detect itself is imported by
:mod:`detectors.drift.alibi`, when it loads a saved detector.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np

from detectors._validation import check_array
from detectors.drift.corrections import CORRECTIONS, bonferroni
from detectors.drift.result import DriftResult, OnlineDriftResult
from detectors.exceptions import DataError

__all__ = [
    "FEATURE_WISE", "MULTIVARIATE", "ONLINE", "SUPPORTED", "AlibiDrift", "AlibiDriftOnline",
    "check_kind",
]  # fmt: skip

#: alibi-detect's class name -> our short name, per family. Others are refused by name.
FEATURE_WISE = {"KSDrift": "ks", "CVMDrift": "cvm", "ChiSquareDrift": "chisquare",
                "TabularDrift": "tabular", "FETDrift": "fet"}  # fmt: skip
MULTIVARIATE = {"MMDDrift": "mmd", "LSDDDrift": "lsdd"}
ONLINE = {"MMDDriftOnline": "mmd-online", "LSDDDriftOnline": "lsdd-online",
          "CVMDriftOnline": "cvm-online"}  # fmt: skip
SUPPORTED = {**FEATURE_WISE, **MULTIVARIATE, **ONLINE}


def check_kind(kind: Any, where: str) -> None:
    """Raise :class:`DataError` unless ``kind`` (a class name) is one of :data:`SUPPORTED`."""
    if kind not in SUPPORTED:
        raise DataError(
            f"{where} holds alibi-detect's {kind}, which robustwatch does not map to its drift "
            f"results; supported: {', '.join(SUPPORTED)}."
        )


class _Adapter:
    """What both adapters share: the wrapped detector, its input shape and dtype, and ``fit``."""

    online = False

    def __init__(self, detector: Any, source: str | None = None) -> None:
        self.kind = type(detector).__name__
        check_kind(self.kind, source or "the detector")
        self.detector = detector
        self.name = f"alibi-{SUPPORTED[self.kind]}"
        self.source = source
        inner = getattr(detector, "_detector", detector)  # the backend of MMD, LSDD
        self._inner = inner
        shape = getattr(inner, "input_shape", None)
        self.input_shape_ = tuple(int(s) for s in shape) if shape else None
        self.n_features_in_ = math.prod(self.input_shape_) if self.input_shape_ else None
        self.n_reference_ = int(inner.x_ref.shape[0])
        self._dtype = _numpy_dtype(getattr(inner, "x_ref", None))

    def __repr__(self) -> str:
        where = f", source={self.source!r}" if self.source else ""
        return f"{type(self).__name__}(kind={self.kind!r}{where})"

    def fit(self, x_ref: Any = None) -> Self:
        """Return the detector itself: its reference is the one alibi-detect saved with it.

        Raises
        ------
        DataError
            If ``x_ref`` is given: refit and save the detector with alibi-detect instead.
        """
        if x_ref is not None:
            raise DataError(
                f"{type(self).__name__} keeps the reference alibi-detect saved with its "
                f"{self.kind} ({self.n_reference_} rows); to change it, build and save the "
                "detector again with alibi-detect."
            )
        return self

    def _rows(self, x: Any, min_rows: int) -> np.ndarray:
        """``x`` as alibi-detect takes it: finite rows of the detector's input shape, cast to
        its reference's dtype (integers only where every value is one)."""
        caller = type(self).__name__
        x = check_array(x, name="x", caller=caller, min_rows=min_rows)
        if self.n_features_in_ is not None:
            if x.shape[1] != self.n_features_in_:
                raise DataError(
                    f"x has {x.shape[1]} values per row, but the alibi-detect {self.kind} takes "
                    f"inputs of shape {self.input_shape_} ({self.n_features_in_} values)."
                )
            x = x.reshape((x.shape[0], *self.input_shape_))
        cast = x.astype(self._dtype)
        if cast.dtype.kind in "iub" and not np.array_equal(cast, x):
            raise DataError(f"x has non-integer values, but the alibi-detect {self.kind} "
                            f"was saved with a reference of {cast.dtype}.")  # fmt: skip
        return cast


def _numpy_dtype(x_ref: Any) -> np.dtype:
    """The numpy dtype of a numpy, torch or TensorFlow reference; float32 when unknown."""
    dtype = getattr(x_ref, "dtype", None)
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # TensorFlow
    try:
        return np.dtype(str(dtype).removeprefix("torch."))
    except TypeError:
        return np.dtype(np.float32)


class AlibiDrift(_Adapter):
    """A batch drift detector of alibi-detect as ``test(x) -> DriftResult``.

    Feature-wise tests (KS, CvM, chi-squared, tabular, Fisher exact) give per-feature p-values
    and distances; the batch p-value is their corrected minimum with the detector's own
    correction (as in :class:`~detectors.drift.DriftResult`), the statistic the largest
    distance, the threshold alibi-detect's per-feature one. MMD and LSDD give their p-value,
    distance and ``p_val``. ``is_drift`` is alibi-detect's. Build it with :func:`load_alibi`.

    Parameters
    ----------
    detector : alibi_detect.cd detector
        One of :data:`FEATURE_WISE` or :data:`MULTIVARIATE`.
    source : str, optional
        Where it was loaded from, for messages.

    Attributes
    ----------
    input_shape_ : tuple of int or None
        The shape of one input; rows of ``x`` are reshaped to it.
    n_features_in_ : int or None
        Values per row ``test`` takes.
    n_reference_ : int
        Rows of the reference alibi-detect saved.
    """

    def __init__(self, detector: Any, source: str | None = None) -> None:
        super().__init__(detector, source)
        if self.kind not in FEATURE_WISE and self.kind not in MULTIVARIATE:
            raise DataError(f"{self.kind} is an online detector: use AlibiDriftOnline.")
        self.p_val = float(self._inner.p_val)

    def test(self, x: Any) -> DriftResult:
        """Test the batch ``x`` of shape (n, n_features) with alibi-detect's ``predict``."""
        rows = self._rows(x, min_rows=2)
        n_reference = int(self._inner.x_ref.shape[0])  # before predict, which may update it
        data = self.detector.predict(rows)["data"]
        if self.kind in MULTIVARIATE:
            return DriftResult(
                is_drift=bool(data["is_drift"]), p_value=data["p_val"],
                statistic=data["distance"], threshold=data["threshold"], p_val=self.p_val,
                feature_p_values=None, feature_statistics=None, n_reference=n_reference,
                n_test=len(rows), detector=self.name,
            )  # fmt: skip
        p = np.asarray(data["p_val"], dtype=np.float64)
        correction = CORRECTIONS.get(getattr(self._inner, "correction", None), bonferroni)
        return DriftResult(
            is_drift=bool(data["is_drift"]), p_value=correction(p, self.p_val).p_value,
            statistic=np.max(data["distance"]),
            # fdr's cut-off, or all k * p_val / d when none passed: the first, as ours says
            threshold=np.min(data["threshold"]), p_val=self.p_val, feature_p_values=p,
            feature_statistics=data["distance"], n_reference=n_reference, n_test=len(rows),
            detector=self.name,
        )  # fmt: skip


class AlibiDriftOnline(_Adapter):
    """An online drift detector of alibi-detect as ``update(x) -> OnlineDriftResult``.

    Each event is one call of alibi-detect's ``predict``, one step. A step's statistic is its
    ``test_stat`` (for CvM, the largest over windows and features, which alibi-detect compares
    with the step's threshold), its alarm alibi-detect's ``is_drift``. CvM's steps before its
    smallest window fills report NaN, as ours do; MMD's and LSDD's windows start full, drawn
    from the reference. Build it with :func:`load_alibi`.

    Parameters
    ----------
    detector : alibi_detect.cd detector
        One of :data:`ONLINE`.
    source : str, optional
        Where it was loaded from, for messages.
    """

    online = True

    def __init__(self, detector: Any, source: str | None = None) -> None:
        super().__init__(detector, source)
        if self.kind not in ONLINE:
            raise DataError(f"{self.kind} is a batch detector: use AlibiDrift.")
        self.ert = float(self._inner.ert)
        sizes = getattr(self._inner, "window_sizes", None)
        self._warmup = min(sizes) - 1 if sizes else 0

    @property
    def step(self) -> int:
        """Events alibi-detect has seen since it was built or reset (its ``t``)."""
        return int(self._inner.t)

    @property
    def warmup(self) -> int:
        """Steps after a reset whose windows are not full yet (no statistic)."""
        return self._warmup

    def reset(self) -> None:
        """Start a new stream (alibi-detect's ``reset_state``)."""
        reset = getattr(self.detector, "reset_state", None) or self.detector.reset
        reset()

    def update(self, x: Any) -> OnlineDriftResult:
        """Feed one event, shape (n_features,), or a micro-batch, shape (b, n_features)."""
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            pass  # check_array says why
        else:
            x = x.reshape(1, -1) if x.ndim == 1 else x  # one event, not one feature
        rows = self._rows(x, min_rows=1)
        stats, thresholds, alarms = np.empty(len(rows)), np.empty(len(rows)), []
        for i, row in enumerate(rows):  # every row is checked before the first step
            data = self.detector.predict(row, return_test_stat=True)["data"]
            threshold = np.asarray(data["threshold"], dtype=np.float64)
            if threshold.size != 1:
                raise DataError(f"alibi-detect's {self.kind} gave {threshold.size} thresholds "
                                "for one step; robustwatch maps one.")  # fmt: skip
            full = int(data["time"]) > self._warmup
            stats[i] = np.nanmax(data["test_stat"]) if full else np.nan
            thresholds[i] = threshold.item() if full else np.nan
            alarms.append(bool(data["is_drift"]))
        first = alarms.index(True) if True in alarms else None
        step = self.step
        return OnlineDriftResult(
            is_drift=first is not None, statistic=stats[-1], threshold=thresholds[-1],
            step=step, drift_step=None if first is None else step - len(rows) + 1 + first,
            step_statistics=stats, step_thresholds=thresholds, ert=self.ert,
            detector=self.name,
        )  # fmt: skip

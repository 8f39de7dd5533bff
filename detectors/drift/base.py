"""What every batch drift detector shares: parameters, input checks, save and load.

A detector declares its parameters in ``_parameter_constraints`` and stores them under their
own names in ``__init__``; it implements ``_fit(x_ref)`` (set learned attributes, named with a
trailing underscore) and ``_test(x) -> DriftResult`` (the math). The base validates the
parameters and the data around those two methods and saves learned state as JSON + ``.npy``
(see :class:`~detectors._persist.Persistable`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from detectors._persist import FORMAT_VERSION, Persistable
from detectors._validation import check_array
from detectors.drift.result import DriftResult
from detectors.exceptions import DataError

__all__ = ["FORMAT_VERSION", "DriftDetector"]


class DriftDetector(Persistable):
    """Base class of batch drift detectors: ``fit(x_ref)`` then ``test(x) -> DriftResult``.

    Attributes
    ----------
    name : str
        Short stable name of the algorithm, used in results and flags (``drift:<name>``).
    n_features_in_ : int
        Features seen in ``fit``; every tested batch must have as many.
    n_reference_ : int
        Rows of the reference seen in ``fit``.

    Examples
    --------
    A saved detector comes back, whatever its class, with identical answers:

    >>> import tempfile
    >>> import numpy as np
    >>> from detectors.drift import KSDrift
    >>> rng = np.random.default_rng(0)
    >>> det = KSDrift(p_val=0.01).fit(rng.normal(size=(500, 3)))
    >>> x = rng.normal(size=(100, 3))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = DriftDetector.load(det.save(tmp))
    >>> loaded, loaded.test(x).to_dict() == det.test(x).to_dict()
    (KSDrift(p_val=0.01, correction='bonferroni', alternative='two-sided', method='auto'), True)
    """

    name: ClassVar[str] = ""
    _min_rows: ClassVar[int] = 2

    def _check(self, x: Any, name: str) -> np.ndarray:
        return check_array(x, name=name, caller=type(self).__name__, min_rows=self._min_rows)

    def fit(self, x_ref: Any) -> Self:
        """Learn the reference distribution from ``x_ref`` of shape (n_ref, n_features).

        A 1-D array is one feature. Returns the detector itself.
        """
        self._validate_params()
        x_ref = self._check(x_ref, "x_ref")
        self._fit(x_ref)
        self.n_features_in_ = x_ref.shape[1]
        self.n_reference_ = x_ref.shape[0]
        self._restore()
        return self

    def test(self, x: Any) -> DriftResult:
        """Test whether batch ``x`` of shape (n, n_features) comes from the reference law."""
        self._require_fitted()
        x = self._check(x, "x")
        if x.shape[1] != self.n_features_in_:
            raise DataError(
                f"x has {x.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_} features."
            )
        return self._test(x)

    def _fit(self, x_ref: np.ndarray) -> None:
        raise NotImplementedError

    def _test(self, x: np.ndarray) -> DriftResult:
        raise NotImplementedError

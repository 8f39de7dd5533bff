"""Maps to a low dimension before a multivariate test: the :class:`Preprocessor` base and
:class:`RandomProjection`; :mod:`~detectors.drift.encoder` holds :class:`UntrainedEncoder` and
:mod:`~detectors.drift.hidden_layer` :class:`HiddenLayer`.

Kernel tests lose power as the dimension grows; projecting high-dimensional inputs (images,
embeddings) to a few dozen dimensions first keeps them sharp (Rabanser et al. 2019). A
preprocessor is given to a detector as ``preprocess=``, fitted on the reference with it and
saved with it.

References
----------
S. Rabanser, S. Günnemann and Z. C. Lipton, "Failing loudly: an empirical study of methods
for detecting dataset shift", NeurIPS 2019.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar, Self

import numpy as np

from detectors._persist import Persistable
from detectors._validation import Constraint, Interval, check_array
from detectors.exceptions import DataError

__all__ = ["Preprocessor", "RandomProjection"]


class Preprocessor(Persistable):
    """Base class: ``fit(x_ref)`` learns the map, ``transform(x)`` applies it row by row.

    Subclasses implement ``_fit(x)`` and ``_transform(x) -> ndarray of shape (n, k)``.
    """

    def fit(self, x_ref: Any) -> Self:
        """Learn the map from ``x_ref`` of shape (n, n_features); returns self."""
        self._validate_params()
        x_ref = check_array(x_ref, name="x_ref", caller=type(self).__name__)
        self._fit(x_ref)
        self.n_features_in_ = x_ref.shape[1]
        self._restore()
        return self

    def transform(self, x: Any) -> np.ndarray:
        """Map ``x`` of shape (n, n_features) to shape (n, k), float64."""
        self._require_fitted("call fit(x_ref) first")
        x = check_array(x, name="x", caller=type(self).__name__)
        if x.shape[1] != self.n_features_in_:
            raise DataError(
                f"x has {x.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_} features."
            )
        return np.asarray(self._transform(x), dtype=np.float64)

    def _fit(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class RandomProjection(Preprocessor):
    """A fixed Gaussian random projection ``z = x W``, ``W_ij ~ N(0, 1 / k)``.

    Distances are preserved up to a factor ``1 +- eps`` with high probability when
    ``k = O(log n / eps^2)`` (Johnson and Lindenstrauss 1984; Dasgupta and Gupta 2003).

    Parameters
    ----------
    n_components : int, default=32
        Output dimension ``k``.
    seed : int, default=0
        Seeds ``W``.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, n_components)
        The projection ``W``.

    References
    ----------
    S. Dasgupta and A. Gupta, "An elementary proof of a theorem of Johnson and Lindenstrauss",
    Random Structures & Algorithms 22 (2003), 60-65.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(5, 100))
    >>> RandomProjection(n_components=8).fit(x).transform(x).shape
    (5, 8)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "n_components": Interval(Integral, 1, None),
        "seed": Interval(Integral, 0, None),
    }

    def __init__(self, n_components: int = 32, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed
        self._validate_params()

    def _fit(self, x: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        w = rng.normal(size=(x.shape[1], self.n_components))
        self.components_ = w / np.sqrt(self.n_components)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return x @ self.components_

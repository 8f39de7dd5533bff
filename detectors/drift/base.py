"""What every batch drift detector shares: parameters, input checks, save and load.

A detector declares its parameters in ``_parameter_constraints`` and stores them under their
own names in ``__init__``; it implements ``_fit(x_ref)`` (set learned attributes, named with a
trailing underscore) and ``_test(x) -> DriftResult`` (the math). The base validates the
parameters and the data around those two methods and saves learned state as JSON + ``.npy``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from detectors._validation import Constraint, check_array, validate_params
from detectors.drift.result import DriftResult
from detectors.exceptions import DataError, NotFittedError

__all__ = ["FORMAT_VERSION", "DriftDetector"]

FORMAT_VERSION = 1
"""Version of the ``config.json`` layout written by :meth:`DriftDetector.save`."""


class DriftDetector:
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
    _parameter_constraints: ClassVar[dict[str, Constraint | Sequence[Constraint]]] = {}
    _min_rows: ClassVar[int] = 2

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters by name."""
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:
        validate_params(self.get_params(), self._parameter_constraints, type(self).__name__)

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
        return self

    def test(self, x: Any) -> DriftResult:
        """Test whether batch ``x`` of shape (n, n_features) comes from the reference law."""
        if not hasattr(self, "n_features_in_"):
            name = type(self).__name__
            raise NotFittedError(f"{name} is not fitted yet: call fit(x_ref) first.")
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

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and one ``<name>.npy`` per learned array into ``directory``.

        No pickle: parameters and learned scalars go to JSON, arrays to ``np.save`` with
        ``allow_pickle=False``. The directory is created if needed. Returns its path.
        """
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: nothing to save.")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        scalars, arrays = {}, []
        for key, value in vars(self).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                np.save(path / f"{key[:-1]}.npy", value, allow_pickle=False)
                arrays.append(key)
            elif isinstance(value, bool | int | float | str):
                scalars[key] = value
            else:
                raise TypeError(f"{type(self).__name__} cannot save {key} of type {type(value)}")
        config = {
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": {
                k: v.item() if isinstance(v, np.generic) else v
                for k, v in self.get_params().items()
            },
            "attributes": scalars,
            "arrays": arrays,
        }
        (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a detector written by :meth:`save`.

        ``DriftDetector.load`` returns whichever detector the directory holds;
        ``KSDrift.load`` also checks that it holds a ``KSDrift``.
        """
        path = Path(directory)
        config = json.loads((path / "config.json").read_text())
        if config.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{path / 'config.json'} has format version {config.get('format_version')!r}; "
                f"this version of robustwatch reads {FORMAT_VERSION}."
            )
        found = [c for c in _subclasses(cls) if c.__name__ == config["class"]]
        if not found:
            raise DataError(f"{path} holds a {config['class']}, which is not a {cls.__name__}.")
        detector = found[0](**config["params"])
        learned = {**config["attributes"], **dict.fromkeys(config["arrays"])}
        for key in learned:
            if not (key.isidentifier() and key.endswith("_") and not key.startswith("_")):
                raise DataError(f"{path / 'config.json'} names an invalid attribute {key!r}.")
        for key, value in config["attributes"].items():
            setattr(detector, key, value)
        for key in config["arrays"]:
            setattr(detector, key, np.load(path / f"{key[:-1]}.npy", allow_pickle=False))
        return detector


def _subclasses(cls: type) -> list[type]:
    """``cls`` and every class below it that has been imported."""
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out

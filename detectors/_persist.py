"""Parameters, ``repr`` and save/load shared by every detector and preprocessor, in every family.

A component declares its parameters in ``_parameter_constraints`` and stores them under their
own names in ``__init__``; what it learns in ``fit`` lives in public attributes ending in ``_``.
:meth:`Persistable.save` writes the parameters and learned scalars to ``config.json``, learned
arrays to ``<name>.npy``, learned ``{name: array}`` dicts to ``<name>.safetensors``, and nested
components (a parameter such as ``preprocess`` or a learned sub-detector) to sub-directories.
Nothing is pickled. Private attributes (``_name``) are caches, rebuilt by ``_restore()`` after
``fit`` and after ``load``. Parameters named in ``_runtime_params`` (a user's model) are not
saved: ``load`` takes them back as keyword arguments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from safetensors.numpy import load_file, save_file

from detectors._validation import Constraint, validate_params
from detectors.exceptions import DataError, NotFittedError

__all__ = ["FORMAT_VERSION", "Persistable"]

FORMAT_VERSION = 1
"""Version of the ``config.json`` layout written by :meth:`Persistable.save`."""

_JSON_SCALARS = (bool, int, float, str)


class Persistable:
    """Parameters from a declared table, a ``repr`` from them, and save/load without pickle."""

    _parameter_constraints: ClassVar[dict[str, Constraint | Sequence[Constraint]]] = {}
    _runtime_params: ClassVar[tuple[str, ...]] = ()

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters by name."""
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:
        validate_params(self.get_params(), self._parameter_constraints, type(self).__name__)

    def _is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _require_fitted(self, action: str = "call fit(x_ref) first") -> None:
        if not self._is_fitted():
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: {action}.")

    def _restore(self) -> None:
        """Rebuild private caches from learned attributes (after ``fit`` and ``load``)."""

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and one file per learned array into ``directory``.

        No pickle: parameters and learned scalars go to JSON, arrays to ``np.save`` with
        ``allow_pickle=False``, dicts of arrays to safetensors, nested components to
        sub-directories. The directory is created if needed. Returns its path.
        """
        self._require_fitted("nothing to save")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        params, param_components = {}, []
        for key, value in self.get_params().items():
            if key in self._runtime_params:
                value = None
            elif isinstance(value, Persistable):
                value.save(path / key)
                param_components.append(key)
                value = None
            params[key] = _to_json(value)
        scalars, arrays, tensors, components = {}, [], [], []
        for key, value in vars(self).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                np.save(path / f"{key[:-1]}.npy", value, allow_pickle=False)
                arrays.append(key)
            elif isinstance(value, Persistable):
                value.save(path / key[:-1])
                components.append(key)
            elif isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
                save_file({k: np.ascontiguousarray(v) for k, v in value.items()},
                          str(path / f"{key[:-1]}.safetensors"))  # fmt: skip
                tensors.append(key)
            elif _is_json(value):
                scalars[key] = _to_json(value)
            else:
                raise TypeError(f"{type(self).__name__} cannot save {key} of type {type(value)}")
        config = {
            "format_version": FORMAT_VERSION, "class": type(self).__name__, "params": params,
            "param_components": param_components, "runtime_params": list(self._runtime_params),
            "attributes": scalars, "arrays": arrays, "tensors": tensors, "components": components,
        }  # fmt: skip
        (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path, **runtime: Any) -> Self:
        """Rebuild a component written by :meth:`save`.

        ``DriftDetector.load`` returns whichever detector the directory holds;
        ``KSDrift.load`` also checks that it holds a ``KSDrift``. ``runtime`` passes back what
        was not saved, e.g. ``model=`` for a :class:`~detectors.drift.HiddenLayer`.
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
        sections = ("arrays", "tensors", "components")
        learned = {**config["attributes"], **{k: None for s in sections for k in config.get(s, [])}}
        for key in learned:
            if not (key.isidentifier() and key.endswith("_") and not key.startswith("_")):
                raise DataError(f"{path / 'config.json'} names an invalid attribute {key!r}.")
        params = dict(config["params"])
        for key in config.get("param_components", []):
            if key not in params or not key.isidentifier():
                raise DataError(f"{path / 'config.json'} names an invalid parameter {key!r}.")
            params[key] = Persistable.load(path / key, **runtime)
        for key in config.get("runtime_params", []):
            if key not in runtime:
                raise DataError(f"{path} holds a {config['class']} saved without its {key!r}; "
                                f"pass {key}=... to load it.")  # fmt: skip
            params[key] = runtime[key]
        component = found[0](**params)
        for key, value in config["attributes"].items():
            setattr(component, key, value)
        for key in config["arrays"]:
            setattr(component, key, np.load(path / f"{key[:-1]}.npy", allow_pickle=False))
        for key in config.get("tensors", []):
            setattr(component, key, load_file(str(path / f"{key[:-1]}.safetensors")))
        for key in config.get("components", []):
            setattr(component, key, Persistable.load(path / key[:-1], **runtime))
        component._restore()
        return component


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (*_JSON_SCALARS, np.generic)):
        return True
    return isinstance(value, list | tuple) and all(_is_json(v) for v in value)


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _subclasses(cls: type) -> list[type]:
    """``cls`` and every class below it that has been imported."""
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out

"""Errors raised by robustness scoring.

Each subclasses the built-in exception a caller would otherwise expect, so ``except
ValueError`` keeps working, and each message says what was wrong and how to fix it. The agent
tells a bad configuration (:class:`ParameterError`) from bad data (:class:`DataError`), from a
model it cannot score (:class:`ModelOutputError`, :class:`ModelLoadError`).

Examples
--------
>>> raise UnknownAttackError("Unknown attack 'pgdd'. Choose among: 'fgsm', 'pgd'.")
Traceback (most recent call last):
...
scoring.exceptions.UnknownAttackError: Unknown attack 'pgdd'. Choose among: 'fgsm', 'pgd'.
>>> issubclass(UnknownAttackError, ValueError), issubclass(ModelLoadError, RuntimeError)
(True, True)
"""

__all__ = [
    "DataError",
    "InputRangeError",
    "LabelError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelOutputError",
    "ParameterError",
    "ScoringError",
    "UnknownAttackError",
    "UnknownNormError",
]


class ScoringError(Exception):
    """Base of every error raised by :mod:`scoring`."""


class ParameterError(ScoringError, ValueError):
    """A parameter outside its declared constraint (eps, steps, alpha, precision, ...)."""


class UnknownAttackError(ParameterError):
    """An attack name that is not in the dispatch table, or one that does not support a norm."""


class UnknownNormError(ParameterError):
    """A norm other than ``"linf"`` or ``"l2"``."""


class DataError(ScoringError, ValueError):
    """Inputs that cannot be scored: empty, NaN or inf, or of the wrong shape."""


class InputRangeError(DataError):
    """Inputs outside the declared valid range ``bounds``."""


class LabelError(DataError):
    """Labels of the wrong shape or type, or outside ``[0, n_classes)``."""


class ModelOutputError(ScoringError, ValueError):
    """A model whose output is not a finite ``(N, n_classes)`` tensor of scores."""


class ModelLoadError(ScoringError, RuntimeError):
    """A model file or factory that cannot be loaded safely."""


class MissingDependencyError(ScoringError, RuntimeError):
    """An optional dependency (matplotlib, safetensors) that a requested feature needs."""

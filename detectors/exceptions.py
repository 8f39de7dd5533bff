"""Errors raised by the detectors.

Every detector raises these, so that the agent can tell a bad configuration
(:class:`ParameterError`) from bad traffic (:class:`DataError`) from a programming
mistake (:class:`NotFittedError`). Each subclasses the built-in exception a caller
would otherwise expect, so ``except ValueError`` keeps working.
"""


class NotFittedError(RuntimeError):
    """A detector was used before ``fit(x_ref)`` taught it a reference.

    Examples
    --------
    >>> raise NotFittedError("KSDrift is not fitted yet: call fit(x_ref) first.")
    Traceback (most recent call last):
    ...
    detectors.exceptions.NotFittedError: KSDrift is not fitted yet: call fit(x_ref) first.
    """


class DataError(ValueError):
    """Data a detector cannot use: NaN or inf, a wrong shape or feature count, too few rows,
    or a saved detector that does not load."""


class ParameterError(ValueError):
    """A constructor parameter outside its declared constraint.

    The message names the parameter, the class, what was expected and what was received:
    ``The 'p_val' parameter of KSDrift must be a float in (0, 1). Got 1.5 instead.``
    """


class DeviceError(RuntimeError):
    """A detector was asked to run on a device this machine does not have (``device="cuda"``
    without CUDA)."""


class ModelError(RuntimeError):
    """The monitored model failed on a batch, or returned something a detector cannot use
    (not one row of at least 2 class scores per input, NaN or inf).

    The message names the detector, the batch shape and the model's own error, so that the
    agent can raise an ``error:<detector>`` flag and log why.
    """


class MissingClientError(DataError):
    """A query without a client id reached a stateful detector configured to refuse them
    (``missing_client="error"``)."""

"""robustwatch agent: the runtime that reads inference traffic from Kafka, runs detectors and
exports results and metrics.

This is the only package that knows Kafka, Prometheus, configuration, signals or threads;
``detectors`` and ``scoring`` are pure algorithms it calls.
"""

from importlib import metadata

try:
    __version__ = metadata.version("robustwatch")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""How the agent's processes log: one format for the runner and its detection worker."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr at ``level``, as text lines or (``fmt="json"``) one JSON object per line."""
    if fmt == "json":
        pattern = (
            '{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s",'
            '"message":"%(message)s"}'
        )
    else:
        pattern = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=pattern, stream=sys.stderr, force=True)
    # kafka-python reports every failed connection attempt at ERROR; the agent reports
    # unreachable brokers itself, once per retry, so that chatter shows only when debugging.
    if logging.getLevelName(level) > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.ERROR)
        logging.getLogger("kafka.net").setLevel(logging.CRITICAL)

"""The stateful query-attack detector's config section that the agent tests share."""

from __future__ import annotations


def stateful_section(match_threshold: int, **overrides) -> dict:
    """Small windows for the tests' short traffic: 4 rows per window, 30 hashes kept, the salt
    read from ``$SALT``; ``match_threshold`` matches make a suspect."""
    return {
        "enabled": True,
        "salt_env": "SALT",
        "step": 0.1,
        "window_size": 4,
        "top_k": 30,
        "match_threshold": match_threshold,
        **overrides,
    }

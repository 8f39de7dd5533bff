"""Constants and checks shared by the parity tests."""

from __future__ import annotations

ADV_EPS = 0.1  # L∞ radius the robust model is trained at (FGSM with a random start)
SIGMA = 0.25  # Gaussian noise the smoothing model is trained with


def at_least_as_strong(ours: float, peer: float, slack: float, what: str) -> None:
    """Fail unless our robust accuracy (lower is stronger) is at most the peer's + ``slack``."""
    if ours > peer + slack:
        raise AssertionError(
            f"{what}: our robust accuracy {ours:.2%} exceeds the peer's {peer:.2%} by "
            f"{ours - peer:.2%}, more than the {slack:.0%} allowed: our attack is weaker."
        )

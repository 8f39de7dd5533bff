"""Liveness and readiness of the agent, as the poll loop reports them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Health:
    """Thread-safe liveness/readiness state.

    The poll loop calls :meth:`beat` on every turn (with a detection worker, only while the
    worker answers its batches). The agent is *alive* while the last beat is younger than
    ``stall_seconds`` (a stuck loop or worker turns ``/healthz`` red so that Kubernetes
    restarts it), and *ready* once it has joined its consumer group and holds partitions.
    """

    def __init__(self, stall_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            self._ready = ready
            self._reason = reason

    def alive(self) -> tuple[bool, str]:
        with self._lock:
            if self._last_beat is None:
                return True, "starting"
            age = self._clock() - self._last_beat
        if age > self.stall_seconds:
            return False, f"no progress for {age:.0f} s (the poll loop or its detection is stuck)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, ("ok" if self._ready else self._reason or "not consuming")

"""Simulated, compressed time for the rehearsal: minutes of a deployment's canary pass in a fraction of a second.

Everything the rehearsal times (schedules, canary waits, alarm periods, metric timestamps) reads `Clock.now()`,
so the lifecycle keeps AWS's own durations (a 10-minute canary wait, 5-minute alarm periods) while it runs in
seconds. `sleep` advances simulated time and really sleeps the compressed share, so concurrent real work (the
serving processes answering traffic) still overlaps it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Simulated time, compressed: `sleep(s)` advances simulated time by s and really sleeps s / speedup."""

    def __init__(self, speedup: float = 600.0, start: datetime | None = None) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._now = (start or datetime.now(UTC)).astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The simulated time (timezone-aware UTC)."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Jumps simulated time forward without sleeping."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        """Advances simulated time by `seconds`, really sleeping `seconds / speedup`."""
        self.advance(seconds)
        time.sleep(seconds / self.speedup)

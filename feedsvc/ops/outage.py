"""Saying that the database went away and came back: once each way, with a backoff between tries. No Flask.

The worker, its start-up and its sign-up decider each keep one `DatabaseOutage`. A restart of
PostgreSQL then shows in their logs as two lines, "database unreachable (what failed: why)" and "database is
back after N s", not one traceback per try, and nothing spins while it is away.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("feedsvc.db")


class DatabaseOutage:
    """Whether the database is out of reach; the wait before the next try (0.5 s doubling to 5 s)."""

    FIRST_WAIT, LONGEST_WAIT = 0.5, 5.0

    def __init__(self) -> None:
        self.since: float | None = None  # time.monotonic() of the first failure of the outage under way
        self.failures = 0
        self._lock = threading.Lock()

    def failed(self, what: str, exc: BaseException, detail: str = "") -> float:
        """Note a failed database step (logged at the first failure of an outage); the seconds to wait."""
        with self._lock:
            self.failures += 1
            if self.since is None:
                self.since = time.monotonic()
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.error(
                    "database unreachable (%s failed: %s)%s; retrying with backoff",
                    what,
                    reason,
                    f"; {detail}" if detail else "",
                )
            else:
                log.debug("%s failed again: %s", what, exc)
            doublings = min(self.failures - 1, 32)  # 2.0 ** 1024 overflows: an outage of an hour and more
            return min(self.FIRST_WAIT * 2.0**doublings, self.LONGEST_WAIT)

    def succeeded(self) -> None:
        """Note a database step that worked: ends the outage under way, if any."""
        if self.since is None:
            return
        with self._lock:
            if self.since is None:
                return
            away = time.monotonic() - self.since
            log.warning("database is back after %.1f s (%d failed tries)", away, self.failures)
            self.since, self.failures = None, 0

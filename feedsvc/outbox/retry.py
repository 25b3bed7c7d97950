"""When to try a message again, and when to give up. Pure: no clock, no database, no randomness of its own.

A temporary failure (a 4xx reply, a dropped or refused connection) is retried with exponential backoff,
``base · factor^(attempts-1)`` capped at ``max_delay``, spread by a little jitter so that a server that
greylisted a whole batch is not hit by the whole batch again in the same second. Retries stop at a
deadline counted from the message's first attempt (Postfix keeps mail five days, Mailman retries for
five days; a newsletter is stale sooner, so the default is two days). A permanent failure (5xx) is never
retried; after ``bounce_limit`` of them a subscriber is marked bounced (the count is compared in one
place, `feedsvc.subscribers.subscriptions.record_bounce`, which the worker hands this limit).

Every value can be set from the environment (``FEEDSVC_RETRY_BASE_SECONDS``, ``FEEDSVC_RETRY_FACTOR``,
``FEEDSVC_RETRY_MAX_SECONDS``, ``FEEDSVC_RETRY_DEADLINE_SECONDS``, ``FEEDSVC_BOUNCE_LIMIT``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass

from feedsvc.config import ConfigError


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff, deadline and hard-bounce limit for outgoing mail."""

    base_seconds: float = 60.0
    factor: float = 2.0
    max_seconds: float = 3600.0
    deadline_seconds: float = 2 * 86400.0
    jitter: float = 0.1
    bounce_limit: int = 3
    bounce_stale_days: int = 30  # days without a bounce until a bounce score starts again (FEEDSVC_BOUNCE_STALE_DAYS)

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.max_seconds < 0 or self.deadline_seconds < 0:
            raise ConfigError("retry delays and deadline must not be negative")
        if self.factor < 1:
            raise ConfigError("the retry factor must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ConfigError("retry jitter must be in [0, 1)")
        if self.bounce_limit < 1:
            raise ConfigError("FEEDSVC_BOUNCE_LIMIT must be at least 1")
        if self.bounce_stale_days < 1:
            raise ConfigError("FEEDSVC_BOUNCE_STALE_DAYS must be at least 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """The policy with any FEEDSVC_RETRY_* / FEEDSVC_BOUNCE_LIMIT values of `env` applied."""
        names = {
            "base_seconds": "FEEDSVC_RETRY_BASE_SECONDS",
            "factor": "FEEDSVC_RETRY_FACTOR",
            "max_seconds": "FEEDSVC_RETRY_MAX_SECONDS",
            "deadline_seconds": "FEEDSVC_RETRY_DEADLINE_SECONDS",
        }
        values: dict[str, float | int] = {}
        try:
            for attr, var in names.items():
                if env.get(var):
                    values[attr] = float(env[var])
            if env.get("FEEDSVC_BOUNCE_LIMIT"):
                values["bounce_limit"] = int(env["FEEDSVC_BOUNCE_LIMIT"])
            if env.get("FEEDSVC_BOUNCE_STALE_DAYS"):
                values["bounce_stale_days"] = int(env["FEEDSVC_BOUNCE_STALE_DAYS"])
        except ValueError as exc:
            raise ConfigError(f"retry settings: {exc}") from exc
        return cls(**values)  # type: ignore[arg-type]

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1 for the first failure)."""
        exponent = max(attempts, 1) - 1
        # Cap the exponent before raising: factor ** 10_000 would overflow a float.
        raw = self.base_seconds * self.factor ** min(exponent, 64)
        capped = min(raw, self.max_seconds)
        if rng is None or not self.jitter:
            return capped
        return capped * (1 + rng.uniform(-self.jitter, self.jitter))

    def next_attempt(
        self,
        attempts: int,
        first_attempt_at: dt.datetime,
        now: dt.datetime,
        rng: random.Random | None = None,
    ) -> dt.datetime | None:
        """When to try again after a temporary failure, or None when the deadline has passed.

        A retry that would fall after the deadline is moved onto it, so the last try happens at the
        deadline rather than being silently dropped.
        """
        deadline = first_attempt_at + dt.timedelta(seconds=self.deadline_seconds)
        if now >= deadline:
            return None
        return min(now + dt.timedelta(seconds=self.delay(attempts, rng)), deadline)

"""A terminal progress bar for a send: sent, failed, remaining, rate and ETA.

`format_line` is pure (counts and timings in, one line out) and is what the tests check. `ProgressBar`
feeds it from successive snapshots: the rate is measured over a sliding window of recent snapshots, so
it follows the current speed rather than the average since start (which a retry pause would distort).
On a terminal the line is redrawn in place; otherwise (a log file, systemd's journal) a full line is
printed at most every `log_interval` seconds so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Counts:
    """Messages of one send (or of all sends) by outcome so far."""

    queued: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.sending + self.sent + self.failed + self.skipped + self.cancelled

    @property
    def remaining(self) -> int:
        return self.queued + self.sending

    @property
    def done(self) -> int:
        return self.total - self.remaining


def format_duration(seconds: float | None) -> str:
    """`1h02m`, `4m05s`, `12s`; `--` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def format_line(counts: Counts, rate: float | None, width: int = 24, label: str = "") -> str:
    """One status line: a bar of done/total, then sent, failed, remaining, rate and ETA."""
    total = counts.total
    fraction = counts.done / total if total else 1.0
    filled = int(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    eta = counts.remaining / rate if rate and counts.remaining else (0.0 if not counts.remaining else None)
    parts = [
        f"{label} " if label else "",
        f"[{bar}] {fraction * 100:5.1f}%",
        f"  sent {counts.sent}",
        f"  failed {counts.failed}",
        f"  skipped {counts.skipped}" if counts.skipped else "",
        f"  cancelled {counts.cancelled}" if counts.cancelled else "",
        f"  remaining {counts.remaining}",
        f"  {rate:.1f}/s" if rate is not None else "  --/s",
        f"  ETA {format_duration(eta)}",
    ]
    return "".join(parts)


class ProgressBar:
    """Draws `format_line` for successive `Counts` snapshots on a stream."""

    def __init__(
        self,
        stream: TextIO | None = None,
        label: str = "",
        window_seconds: float = 10.0,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.window_seconds = window_seconds
        self.log_interval = log_interval
        self.clock = clock
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._samples: deque[tuple[float, int]] = deque()
        self._last_log = float("-inf")
        self._width = 0

    def rate(self) -> float | None:
        """Messages finished per second over the window, or None before two samples."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def update(self, counts: Counts, force: bool = False) -> str:
        """Record a snapshot and draw it (in place on a terminal); returns the line."""
        now = self.clock()
        self._samples.append((now, counts.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_seconds:
            self._samples.popleft()
        line = format_line(counts, self.rate(), label=self.label)
        if self.interactive:
            pad = " " * max(self._width - len(line), 0)
            self.stream.write("\r" + line + pad)
            self._width = len(line)
            self.stream.flush()
        elif force or now - self._last_log >= self.log_interval:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_log = now
        return line

    def finish(self, counts: Counts) -> str:
        """Draw the final snapshot and end the line."""
        line = self.update(counts, force=True)
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
        return line

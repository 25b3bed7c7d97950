"""A pool of persistent mail transports under one global send rate, for bulk sending from worker threads.

Opening an SMTP connection (TCP, EHLO, STARTTLS, AUTH) costs several round trips, so a newsletter send
reuses a few connections for thousands of messages. The pool keeps up to `size` transports (each an
`SmtpTransport` holding one persistent connection, or a `MailDirTransport`), lends one to each sending
thread at a time, and spaces messages with a token bucket shared by all of them (`rate` messages per
second, 0 for no limit), so the configured rate holds however many threads send. Any other `Pacer` can
take the bucket's place: the worker passes the fleet-wide one of feedsvc.outbox.rate.

Connection health is the transport's job (feedsvc.mail.transport): an idle connection is checked with NOOP
and replaced when the server dropped it, a failed transaction is reset with RSET and the connection
kept, a 421 or a broken socket closes it and the next message reconnects. So is the classification of
failures, in one place: `TemporaryFailure` (4xx, no or a dropped connection: retry later) and
`PermanentFailure` (5xx: do not retry). After a temporary failure the pool also closes the transport,
so the next message starts on a fresh connection rather than one a server is throttling.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from feedsvc.mail.transport import Envelope, TemporaryFailure, Transport

__all__ = ["Pacer", "TokenBucket", "TransportPool"]


class Pacer:
    """Spaces messages: `reserve()` books the next slot and says how long to wait for it."""

    sleep: Callable[[float], None]

    def reserve(self) -> float:
        """Reserve one slot; return how long the caller must wait before using it."""
        raise NotImplementedError

    def acquire(self) -> float:
        """Block until one message may go; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self.sleep(wait)
        return wait


class TokenBucket(Pacer):
    """A thread-safe rate limiter: `acquire()` returns when the caller may send one more message.

    Implemented as a virtual schedule (GCRA): each caller reserves the next free slot under a lock and
    sleeps outside it, so waiting threads are served in order and the long-run rate is exactly `rate`,
    with up to `burst` messages allowed back to back. A rate of 0 (or less) means no limit.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst = rate, max(burst, 1)
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._tat = float("-inf")  # theoretical arrival time of the next message

    def reserve(self) -> float:
        """Reserve one slot; return how long the caller must wait before using it."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        with self._lock:
            now = self.clock()
            tat = max(self._tat, now)
            wait = tat - now - (self.burst - 1) * interval
            self._tat = tat + interval
        return wait if wait > 1e-9 else 0.0  # float noise is not a wait


class TransportPool:
    """Up to `size` transports, each used by one thread at a time, under one pacer (a token bucket of `rate`)."""

    def __init__(
        self,
        factory: Callable[[], Transport],
        size: int = 4,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("the pool needs at least one transport")
        self.factory, self.size = factory, size
        self.bucket = pacer or TokenBucket(rate, clock=clock, sleep=sleep)
        self._idle: queue.LifoQueue[Transport] = queue.LifoQueue()
        self._all: list[Transport] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()

    def send(self, envelope: Envelope, data: bytes) -> None:
        """Send one message's bytes (after the rate limit lets it go).

        Raises the transport's `TemporaryFailure` or `PermanentFailure`.
        """
        with self.transport() as transport:
            self.bucket.acquire()
            try:
                transport.send(envelope, data)
            except TemporaryFailure:
                transport.close()
                raise

    @contextmanager
    def transport(self) -> Iterator[Transport]:
        """Borrow a transport for this thread; it goes back to the pool afterwards."""
        self._slots.acquire()
        try:
            try:
                transport = self._idle.get_nowait()
            except queue.Empty:
                transport = self.factory()
                with self._lock:
                    self._all.append(transport)
            try:
                yield transport
            finally:
                self._idle.put(transport)
        finally:
            self._slots.release()

    @property
    def connections_opened(self) -> int:
        """Connections the pooled SMTP transports have opened so far (0 for other transports)."""
        with self._lock:
            return sum(getattr(t, "connections", 0) for t in self._all)

    def close(self) -> None:
        """Close every transport (QUIT the SMTP connections); the pool can be used again afterwards."""
        with self._lock:
            transports = list(self._all)
        for transport in transports:
            transport.close()

    def __enter__(self) -> TransportPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

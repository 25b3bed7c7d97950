"""A pool of persistent SMTP connections with a global send rate, for bulk sending from worker threads.

Opening an SMTP connection (TCP, EHLO, STARTTLS, AUTH) costs several round trips; a newsletter send
reuses a few connections for thousands of messages instead. The pool keeps up to `size` connections,
hands one to each sending thread, and:

* checks a connection that sat idle longer than `idle_check_seconds` with NOOP before using it, and
  replaces it when the server has dropped it;
* resets a transaction that failed part-way (RSET) so the connection can carry the next message, and
  throws the connection away when the reply was 421 (the server is closing) or the socket broke;
* rolls a connection over after `max_per_connection` messages, as many providers limit messages per session;
* spaces messages by a token bucket shared by every connection (`rate` messages per second, 0 for no
  limit), so the configured rate holds however many threads send.

Every failure is raised as `SendFailure` with the reply code and whether it is temporary (4xx, a dropped
or refused connection, a timeout: retry later) or permanent (5xx: do not retry). The classification is
in `classify`, one place, so the worker's retry policy and the bounce count agree with it.
"""

from __future__ import annotations

import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from urllib.parse import unquote, urlsplit

__all__ = ["PooledConnection", "SendFailure", "SmtpPool", "TokenBucket", "classify", "connect_url", "serialise"]


class SendFailure(Exception):
    """A message was not accepted. `temporary`: try again later; otherwise the address is refused.

    `code` is the SMTP reply code (0 when there was no reply: a refused, dropped or timed-out
    connection). `maybe_delivered` is set when the connection broke after the message body was sent
    but before the server's reply: the server may have taken it, so a retry may make a duplicate.
    """

    def __init__(self, code: int, message: str, temporary: bool, maybe_delivered: bool = False) -> None:
        self.code, self.message, self.temporary = code, message, temporary
        self.maybe_delivered = maybe_delivered
        super().__init__(f"{code} {message}" if code else message)


def classify(code: int, message: str | bytes, *, maybe_delivered: bool = False) -> SendFailure:
    """The failure a reply code means: 5xx permanent, anything else (4xx, 0 = no reply) temporary."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    temporary = not 500 <= code < 600
    return SendFailure(code, " ".join(text.split())[:500], temporary, maybe_delivered=maybe_delivered)


class TokenBucket:
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

    def acquire(self) -> float:
        """Block until one message may go; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self.sleep(wait)
        return wait


@dataclass
class PooledConnection:
    """An open SMTP session and what the pool needs to know about it."""

    smtp: smtplib.SMTP
    created: float
    last_used: float
    sent: int = 0

    @property
    def is_open(self) -> bool:
        return getattr(self.smtp, "sock", None) is not None

    def close(self) -> None:
        """QUIT politely, or just close the socket when the server is gone."""
        try:
            if self.is_open:
                self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            with suppress(OSError):
                self.smtp.close()


def connect_url(url: str, timeout: float = 30.0, local_hostname: str | None = None) -> Callable[[], smtplib.SMTP]:
    """A connection factory for `smtp://[user:pass@]host[:port]` or `smtps://…`.

    smtp:// upgrades with STARTTLS when the server offers it, and requires it when credentials are
    given for a host that is not loopback (a password is never sent in the clear over a network).
    `?starttls=no` turns the upgrade off (a local relay). smtps:// is TLS from the first byte (465).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"unsupported mail URL scheme {parts.scheme!r} (use smtp:// or smtps://)")
    host = parts.hostname or "localhost"
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    options = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    starttls = options.get("starttls", "yes").lower() not in ("no", "0", "false", "off")
    loopback = host in ("localhost", "127.0.0.1", "::1")

    def connect() -> smtplib.SMTP:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if parts.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, local_hostname=local_hostname, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout, local_hostname=local_hostname)
        try:
            smtp.ehlo()
            if parts.scheme == "smtp" and starttls:
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                elif user and not loopback:
                    raise SendFailure(0, f"{host} does not offer STARTTLS; refusing to send a password", True)
            if user:
                smtp.login(user, password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    return connect


def serialise(message: EmailMessage) -> bytes:
    """The message as SMTP DATA bytes: CRLF line ends, no Bcc header."""
    if "Bcc" in message:
        del message["Bcc"]
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


class SmtpPool:
    """Up to `size` persistent SMTP connections shared by sending threads, under one token bucket."""

    def __init__(
        self,
        connect: Callable[[], smtplib.SMTP],
        size: int = 4,
        rate: float = 0.0,
        idle_check_seconds: float = 30.0,
        max_per_connection: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError("the pool needs at least one connection")
        self.connect, self.size = connect, size
        self.idle_check_seconds = idle_check_seconds
        self.max_per_connection = max_per_connection
        self.clock = clock
        self.bucket = TokenBucket(rate, clock=clock)
        self._idle: queue.LifoQueue[PooledConnection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened over the pool's life (a health figure for logs and tests)

    @classmethod
    def from_url(cls, url: str, size: int = 4, rate: float = 0.0, timeout: float = 30.0, **kwargs: object) -> SmtpPool:
        """A pool connecting to `url` (see `connect_url`)."""
        return cls(connect_url(url, timeout=timeout), size=size, rate=rate, **kwargs)  # type: ignore[arg-type]

    # -------------------------------------------------------------------------------------- sending

    def send(self, sender: str, recipients: list[str], data: bytes) -> str:
        """Send one message; return the server's reply to DATA (often its queue id).

        Raises `SendFailure` (temporary or permanent). Waits for the rate limit and for a free connection.
        """
        self.bucket.acquire()
        with self.connection() as conn:
            return self._transaction(conn, sender, recipients, data)

    def send_message(
        self, message: EmailMessage, sender: str | None = None, recipients: list[str] | None = None
    ) -> str:
        """Send an EmailMessage (envelope from its From/To unless given); return its Message-ID."""
        if sender is None:
            sender = getaddresses([str(message.get("Sender") or message.get("From") or "")])[0][1]
        if recipients is None:
            fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
            recipients = [addr for _, addr in getaddresses(fields) if addr]
        self.send(sender, recipients, serialise(message))
        return str(message.get("Message-ID", ""))

    def _transaction(self, conn: PooledConnection, sender: str, recipients: list[str], data: bytes) -> str:
        smtp = conn.smtp
        utf8 = not (sender.isascii() and all(r.isascii() for r in recipients))
        data_sent = False
        try:
            options: list[str] = []
            if smtp.does_esmtp and smtp.has_extn("size"):
                options.append(f"SIZE={len(data)}")
            if utf8:
                if not smtp.has_extn("smtputf8"):
                    raise SendFailure(553, "address needs SMTPUTF8, which the server does not offer", False)
                options.append("SMTPUTF8")
            code, reply = smtp.mail(sender, options)
            if code != 250:
                raise classify(code, reply)
            refused: list[tuple[int, bytes]] = []
            for rcpt in recipients:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    refused.append((code, reply))
                    if code == 421:
                        break
            if refused:
                # All or nothing: a refused recipient (there is one per newsletter message) ends the
                # transaction before DATA. With several, the most hopeful reply decides (4xx before 5xx).
                code, reply = min(refused, key=lambda r: (r[0] != 421, not 400 <= r[0] < 500, r[0]))
                raise classify(code, reply)
            data_sent = True
            code, reply = smtp.data(data)
            if code != 250:
                raise classify(code, reply)
            conn.sent += 1
            conn.last_used = self.clock()
            return reply.decode("utf-8", "replace")
        except SendFailure as failure:
            if failure.code == 421 or not self._reset(conn):
                conn.close()
            raise
        except smtplib.SMTPResponseException as exc:  # e.g. DATA answered with something but 354
            failure = classify(exc.smtp_code, exc.smtp_error)
            if failure.code == 421 or not self._reset(conn):
                conn.close()
            raise failure from exc
        except OSError as exc:  # SMTPServerDisconnected, a reset or a timeout: the session is gone
            conn.close()
            raise SendFailure(
                0,
                f"connection lost: {exc or type(exc).__name__}",
                temporary=True,
                maybe_delivered=data_sent,
            ) from exc

    def _reset(self, conn: PooledConnection) -> bool:
        """RSET after a failed transaction; False when the connection is no longer usable."""
        if not conn.is_open:
            return False
        try:
            return conn.smtp.rset()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    # ---------------------------------------------------------------------------------- connections

    @contextmanager
    def connection(self) -> Iterator[PooledConnection]:
        """Borrow a healthy connection; it goes back to the pool, or is dropped if it broke."""
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    def _checkout(self) -> PooledConnection:
        if self._closed:
            raise SendFailure(0, "the SMTP pool is closed", temporary=True)
        self._slots.acquire()
        try:
            while True:
                try:
                    conn = self._idle.get_nowait()
                except queue.Empty:
                    return self._open()
                if self._healthy(conn):
                    return conn
                conn.close()
        except BaseException:
            self._slots.release()
            raise

    def _healthy(self, conn: PooledConnection) -> bool:
        if not conn.is_open:
            return False
        if self.max_per_connection and conn.sent >= self.max_per_connection:
            return False
        if self.clock() - conn.last_used < self.idle_check_seconds:
            return True
        try:
            ok = conn.smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False
        conn.last_used = self.clock()
        return ok

    def _open(self) -> PooledConnection:
        try:
            smtp = self.connect()
        except SendFailure:
            raise
        except smtplib.SMTPResponseException as exc:
            raise classify(exc.smtp_code, exc.smtp_error) from exc
        except OSError as exc:  # refused, unreachable, timed out, or the greeting/EHLO failed
            raise SendFailure(0, f"cannot connect: {exc}", temporary=True) from exc
        with self._lock:
            self.opened += 1
        now = self.clock()
        return PooledConnection(smtp, created=now, last_used=now)

    def _checkin(self, conn: PooledConnection) -> None:
        try:
            if conn.is_open and not self._closed:
                self._idle.put(conn)
            else:
                conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        """QUIT every idle connection; connections in use are closed when they come back."""
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def __enter__(self) -> SmtpPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A real SMTP server on loopback for tests: aiosmtpd in a background thread, collecting what arrives.

    from smtp_support import SmtpSink

    with SmtpSink() as sink:                      # 127.0.0.1, a free port
        transport = SmtpTransport(sink.url)       # smtp://127.0.0.1:PORT?starttls=off
        transport.send(message)
        [received] = sink.wait_for(1)
        received.message["Subject"], received.data, received.rcpt_tos

It can also offer STARTTLS or speak TLS from the start (`tls_context`/`implicit_tls` with a certificate
from `self_signed_certificate`), require AUTH (`users`), answer a stage with a chosen reply
(`sink.replies["RCPT"] = "550 5.1.1 no such user"`), refuse one recipient
(`sink.refuse["b@example.com"] = "550 5.1.1 no such user"`), drop the connection at a stage
(`sink.drop_at = "DATA"`) or hang up on every open connection (`sink.hang_up()`, an idle timeout).
Tests that import it share nothing: each sink has its own port and lists.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

__all__ = ["Received", "SmtpSink", "free_port", "self_signed_certificate", "server_context"]


@dataclass
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)
    tls: bool = False
    auth_user: str | None = None

    @property
    def message(self) -> EmailMessage:
        """The received bytes parsed with the modern email policy."""
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    def _override(self, server: SMTP, stage: str) -> str | None:
        if self.sink.drop_at == stage:
            server.transport.close()  # type: ignore[union-attr]
            return "421 4.4.2 connection dropped by the test"
        return self.sink.replies.get(stage)

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        reply = self._override(server, "MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        reply = self._override(server, "RCPT") or self.sink.refuse.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        reply = self._override(server, "DATA")
        if reply:
            return reply
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content),
            mail_options=list(envelope.mail_options),
            tls=session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,  # type: ignore[union-attr]
            auth_user=login.decode() if login else None,
        )
        with self.sink._lock:
            self.sink.messages.append(received)
            self.sink._arrived.notify_all()
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """Counts the connections it accepts."""

    def __init__(self, sink: SmtpSink, *args: Any, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        self._sink.connections += 1
        server = super().factory()
        self._sink._servers.append(server)
        return server


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts in `messages`."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        users: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = 0
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.require_starttls = require_starttls
        self.users = users
        self.messages: list[Received] = []
        self.replies: dict[str, str] = {}  # stage (MAIL, RCPT, DATA) -> reply, e.g. "550 5.1.1 no such user"
        self.refuse: dict[str, str] = {}  # recipient address -> RCPT reply, for refusing some recipients
        self.drop_at: str | None = None  # stage at which to close the connection instead of answering
        self.connections = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._controller: _Controller | None = None
        self._servers: list[SMTP] = []  # one per connection, to hang up on

    @property
    def url(self) -> str:
        """An FEEDSVC_SMTP_URL for this sink (plain SMTP unless it speaks TLS)."""
        if self.implicit_tls:
            return f"smtps://{self.host}:{self.port}"
        if self.tls_context is not None:
            return f"smtp://{self.host}:{self.port}"
        return f"smtp://{self.host}:{self.port}?starttls=off"

    def start(self) -> SmtpSink:
        """Listen on a free port; returns when the server answers."""
        kwargs: dict[str, Any] = {"ready_timeout": 10.0}
        if self.users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self.tls_context is not None and self.implicit_tls:
            kwargs["ssl_context"] = self.tls_context
        elif self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=self.require_starttls)
        last: OSError | None = None
        for _attempt in range(5):  # another process may take the port between probing and binding
            self.port = free_port(self.host)
            controller = _Controller(self, _Handler(self), hostname=self.host, port=self.port, **kwargs)
            try:
                controller.start()
            except OSError as exc:
                last = exc
                continue
            self._controller = controller
            self.connections = 0  # the controller's own readiness probe is not a client
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last}")

    def stop(self) -> None:
        """Stop listening and close open connections."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def hang_up(self) -> None:
        """Close every open connection from the server's side, as a server's idle timeout does."""
        controller = self._controller
        assert controller is not None, "the sink is not running"

        def close_all() -> None:
            for server in self._servers:
                if server.transport is not None:
                    server.transport.close()

        closed = threading.Event()
        controller.loop.call_soon_threadsafe(close_all)
        controller.loop.call_soon_threadsafe(closed.set)  # after the closes it queued: the sockets are shut
        assert closed.wait(5), "the SMTP sink's loop did not answer"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` messages, waiting up to `timeout` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, {len(self.messages)} arrived")
                self._arrived.wait(left)
            return list(self.messages[:count])

    def _authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users is not None:
            user, password = data.login.decode(), data.password.decode()
            ok = self.users.get(user) == password
            # handled=False makes aiosmtpd answer a refusal with 535 itself (handled defaults to True)
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)
        return AuthResult(success=False, handled=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def self_signed_certificate(folder: Path, openssl: str = "openssl") -> tuple[Path, Path]:
    """A certificate and key for localhost and 127.0.0.1, made with the openssl command; (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context for the sink."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context

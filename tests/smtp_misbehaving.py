"""An SMTP server on loopback that misbehaves on purpose, and counts exactly what it accepted.

`MisbehavingSmtp` answers 550 at RCPT for chosen addresses, and, at random (seeded, so a failing run
can be replayed), greylists at RCPT (451), refuses at DATA (451, or 421 and hangs up), or drops the
connection without a reply; `reply_delay` makes it a slow relay, and `port` brings a server back on the
port of one that was stopped. `drop_after_accept` makes it drop the connection *after* it has stored a
message, before answering: the case where a sender cannot know the message arrived, which is where an
at-least-once sender makes its (counted) duplicates. With every rate at 0 it is a plain sink.

Use it as a context manager:

    with MisbehavingSmtp(reject={"bad@example.org"}, temp_fail_rate=0.2, drop_rate=0.05) as server:
        ... send to server.url ...
    assert server.accepted["good@example.org"] == 1
    server.received[0].message["To"]        # what arrived, in order (smtp_support.Received)
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from email import message_from_bytes
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_support import Received


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, owner: MisbehavingSmtp) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        owner = self.owner
        with owner.lock:
            owner.rcpt_seen[address] += 1
            if address.lower() in owner.reject:
                owner.rejected[address] += 1
                return "550 5.1.1 No such user here"
            if owner.rng.random() < owner.temp_fail_rate / 2:
                owner.temporary[address] += 1
                return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        owner = self.owner
        if owner.reply_delay:
            await asyncio.sleep(owner.reply_delay)
        with owner.lock:
            roll = owner.rng.random()
            # Half of the temporary failures come at RCPT; the rest here, so that overall a transaction
            # fails temporarily with probability temp_fail_rate.
            half = owner.temp_fail_rate / 2
            drop, temp = owner.drop_rate, (half / (1 - half) if half < 1 else 1.0)
            if roll < drop:
                owner.dropped += 1
                action = "drop"
            elif roll < drop + temp:
                for rcpt in envelope.rcpt_tos:
                    owner.temporary[rcpt] += 1
                action = owner.rng.choice(["421", "451"])
            else:
                for rcpt in envelope.rcpt_tos:
                    owner.accepted[rcpt] += 1
                owner.received.append(
                    Received(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.original_content or b""))
                )
                owner.message_ids.extend(_message_id(envelope) for _ in envelope.rcpt_tos)
                action = "drop-after" if owner.rng.random() < owner.drop_after_accept else "ok"
                if action == "drop-after":
                    owner.dropped_after_accept += 1
        if action in ("drop", "drop-after"):
            assert server.transport is not None
            server.transport.abort()  # no reply at all: the client sees the connection die
            return "250 OK (never seen)"
        if action == "421":
            assert server.transport is not None
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.3.2 Service shutting down, closing transmission channel"
        if action == "451":
            return "451 4.3.0 Temporary local problem, try again"
        return "250 2.0.0 Message accepted"


def _message_id(envelope: Envelope) -> str:
    content = envelope.original_content or b""
    head = content.split(b"\r\n\r\n", 1)[0]
    return str(message_from_bytes(head + b"\r\n\r\n", policy=default_policy).get("Message-ID", ""))


class MisbehavingSmtp:
    """A loopback SMTP server with configurable failures; see the module docstring."""

    def __init__(
        self,
        reject: Iterable[str] = (),
        temp_fail_rate: float = 0.0,
        drop_rate: float = 0.0,
        drop_after_accept: float = 0.0,
        seed: int = 0,
        port: int = 0,
        reply_delay: float = 0.0,
    ) -> None:
        self.reject = {a.lower() for a in reject}
        self.temp_fail_rate, self.drop_rate, self.drop_after_accept = temp_fail_rate, drop_rate, drop_after_accept
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.temporary: Counter[str] = Counter()
        self.rcpt_seen: Counter[str] = Counter()
        self.message_ids: list[str] = []
        self.received: list[Received] = []  # every accepted transaction, in the order they arrived
        self.dropped = 0
        self.dropped_after_accept = 0
        self.port = port or free_port()  # a given port: a server "coming back" where an earlier one was
        self.reply_delay = reply_delay  # seconds before answering DATA: a slow relay, messages long in flight
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, data_size_limit=0, enable_SMTPUTF8=True
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    @property
    def total_accepted(self) -> int:
        with self.lock:
            return sum(self.accepted.values())

    def start(self) -> MisbehavingSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MisbehavingSmtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

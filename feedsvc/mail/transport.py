"""Sending one message, by SMTP or into a folder of .eml files: the one interface the rest of feedsvc uses.

`open_transport(settings)` gives an `SmtpTransport` when FEEDSVC_SMTP_URL is set and a `MailDirTransport`
(var/mail/) otherwise. Both take the finished bytes and an `Envelope` (sender, recipients, Message-ID),
so what is sent is exactly what was built (or signed), and the envelope sender may differ per message;
`prepare` turns an `EmailMessage` into that pair for callers that have one. Both raise only
`TemporaryFailure` (try again later: 4xx, a refused, dropped or timed-out connection, a full disk) or
`PermanentFailure` (5xx for this message: do not retry). A transport is used by one thread at a time;
bulk senders keep one per thread or pool them.

FEEDSVC_SMTP_URL forms::

    smtp://host[:port]                 port 25; STARTTLS when the server offers it
    smtp://user:pass@host:587          the same, then AUTH (never over plain text to a non-loopback host)
    smtp://host:587?starttls=required  refuse to go on without STARTTLS
    smtp://127.0.0.1:1025?starttls=off plain SMTP (a local relay or a test sink)
    smtps://user:pass@host[:465]       TLS from the first byte

Query options: ``timeout`` (seconds, default 30), ``cafile`` (a CA bundle for a private CA), ``helo``
(the name to greet with). User and password are percent-decoded.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import smtplib
import ssl
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

from feedsvc.config import ConfigError, Settings
from feedsvc.mail.message import serialise
from feedsvc.mail.signing import signed
from feedsvc.ops.metrics import observe_smtp

__all__ = [
    "Envelope",
    "MailDirTransport",
    "PermanentFailure",
    "SmtpConfig",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "TransportFailure",
    "open_transport",
    "prepare",
]

log = logging.getLogger(__name__)


class Transport(Protocol):
    """Sends one message at a time: finished bytes to the envelope's recipients."""

    def send(self, envelope: Envelope, data: bytes) -> None:
        """Send `data` (RFC 5322 bytes, CRLF) as `envelope` says; raise a `TransportFailure` if not accepted."""
        ...

    def close(self) -> None:
        """Release connections or files; the transport may be used again afterwards (it reconnects)."""
        ...


class TransportFailure(Exception):
    """A message was not accepted. `code` is the SMTP reply code (0 when there was none).

    `maybe_delivered` is set when the connection broke after the body may have been sent: the server may
    have taken the message, so a retry may deliver it twice (the Message-ID stays the same).
    """

    temporary: bool = True

    def __init__(self, code: int, message: str, *, maybe_delivered: bool = False) -> None:
        self.code = code
        self.message = " ".join(message.split())[:500]
        self.maybe_delivered = maybe_delivered
        super().__init__(f"{code} {self.message}" if code else self.message)


class TemporaryFailure(TransportFailure):
    """Try again later: a 4xx reply, no connection, a dropped connection, a timeout, a setup problem."""

    temporary = True


class PermanentFailure(TransportFailure):
    """Do not retry this message: the server answered 5xx to its sender, recipient or content."""

    temporary = False


def _failure(code: int, text: str | bytes, *, maybe_delivered: bool = False) -> TransportFailure:
    """The failure a reply code means: 5xx permanent, anything else temporary."""
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    kind = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    return kind(code, message, maybe_delivered=maybe_delivered)


# ------------------------------------------------------------------------------------------ envelope


@dataclass(frozen=True)
class Envelope:
    """Who a message goes from and to over SMTP (MAIL FROM, RCPT TO), and the Message-ID it carries."""

    sender: str
    recipients: tuple[str, ...]
    message_id: str


def prepare(message: EmailMessage) -> tuple[Envelope, bytes]:
    """Complete `message` (Message-ID and Date if missing, Bcc removed) and give its envelope and bytes.

    The sender is the Sender header, else From; the recipients are To, Cc and Bcc.
    """
    senders = getaddresses(message.get_all("Sender") or message.get_all("From") or [])
    sender = senders[0][1] if senders else ""
    if "@" not in sender:
        raise ValueError("the message has no From address")
    recipients: list[str] = []
    for _name, address in getaddresses([str(v) for h in ("To", "Cc", "Bcc") for v in message.get_all(h) or []]):
        if address and address not in recipients:
            recipients.append(address)
    if not recipients:
        raise ValueError("the message has no recipient (To, Cc or Bcc)")
    if message["Message-ID"] is None:
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    if message["Date"] is None:
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    if "Bcc" in message:  # deleting marks the message changed, which costs the fast serialiser
        del message["Bcc"]
    return Envelope(sender, tuple(recipients), str(message["Message-ID"]).strip()), serialise(message)


# -------------------------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect, from FEEDSVC_SMTP_URL (see the module docstring)."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "auto"  # auto (when offered), required, off
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    cafile: str = ""
    helo: str = ""

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse an smtp:// or smtps:// URL; a `ConfigError` says what is wrong (never echoing the password)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError("FEEDSVC_SMTP_URL must start with smtp:// or smtps://")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("FEEDSVC_SMTP_URL has an invalid port") from None
        if not parts.hostname:
            raise ConfigError("FEEDSVC_SMTP_URL has no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - {"starttls", "timeout", "cafile", "helo"})
        if unknown:
            raise ConfigError(f"FEEDSVC_SMTP_URL has unknown options: {', '.join(unknown)}")
        implicit = parts.scheme == "smtps"
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "required", "off") or (implicit and "starttls" in query):
            raise ConfigError("FEEDSVC_SMTP_URL: starttls is auto, required or off, and only for smtp://")
        try:
            timeout = float(query.get("timeout", "30"))
        except ValueError:
            raise ConfigError("FEEDSVC_SMTP_URL: timeout must be a number of seconds") from None
        if (parts.username is None) != (parts.password is None):
            raise ConfigError("FEEDSVC_SMTP_URL: give both user and password, or neither")
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls="off" if implicit else starttls,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            timeout=timeout,
            cafile=query.get("cafile", ""),
            helo=query.get("helo", ""),
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Certificate and host name checked, against the system CAs or `cafile`."""
        return ssl.create_default_context(cafile=self.cafile or None)

    @property
    def loopback(self) -> bool:
        """Whether the server is on this machine (then AUTH over plain text is allowed)."""
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


class SmtpTransport:
    """Sends over one SMTP connection, opened on first use and kept for the next message.

    A connection idle for `idle_check` seconds is checked with NOOP and replaced if the server has dropped
    it. After a refused message the transaction is reset (RSET) and the connection kept; a 421 reply or a
    broken connection closes it. Setup problems (connect, TLS, AUTH) are temporary failures: the message is
    fine and goes once the operator has fixed them.
    """

    def __init__(self, config: SmtpConfig | str, *, idle_check: float = 10.0) -> None:
        self.config = SmtpConfig.from_url(config) if isinstance(config, str) else config
        self.idle_check = idle_check
        self.connections = 0  # how many connections were opened (for tests and statistics)
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, envelope: Envelope, data: bytes) -> None:
        """Send `data` from the envelope's sender to its recipients (accepted by at least one, or it raises)."""
        smtp = self._connection()
        started = time.perf_counter()
        try:
            self._transaction(smtp, envelope, data)
        except TransportFailure as exc:
            observe_smtp(started, "no_reply" if exc.code == 0 else "temporary" if exc.temporary else "permanent")
            raise
        observe_smtp(started, "accepted")

    def _transaction(self, smtp: smtplib.SMTP, envelope: Envelope, data: bytes) -> None:
        """MAIL, RCPT, DATA on `smtp`; raises a TransportFailure with the server's reply."""
        stage = "MAIL"
        try:
            code, reply = smtp.mail(envelope.sender, self._mail_options(smtp, envelope, data))
            if code != 250:
                self._reset(smtp)
                raise _failure(code, reply)
            stage = "RCPT"
            refused: dict[str, tuple[int, bytes]] = {}
            for rcpt in envelope.recipients:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if len(refused) == len(envelope.recipients):
                self._reset(smtp)
                code, reply = min(refused.values(), key=lambda r: r[0])  # a 4xx among them: retry may help
                raise _failure(code, reply)
            stage = "DATA"
            code, reply = smtp.data(data)
            if code != 250:
                self._reset(smtp)
                raise _failure(code, reply)
        except TransportFailure as exc:
            if exc.code == 421:
                self.close()
            raise
        except smtplib.SMTPResponseException as exc:  # MAIL refused, DATA refused before the body
            if exc.smtp_code == 421:
                self.close()
            else:
                self._reset(smtp)
            raise _failure(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:  # the connection broke or timed out
            self.close()
            raise TemporaryFailure(
                0, f"connection lost during {stage}: {exc}", maybe_delivered=stage == "DATA"
            ) from exc
        self._last_used = time.monotonic()
        if refused:
            log.warning("%s: accepted for some recipients; refused: %s", envelope.message_id, sorted(refused))

    def close(self) -> None:
        """QUIT and close the connection (if any); the next send opens a new one."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    # -- internals

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and time.monotonic() - self._last_used >= self.idle_check:
            try:
                if self._smtp.noop()[0] != 250:
                    raise smtplib.SMTPServerDisconnected("NOOP refused")
            except (smtplib.SMTPException, OSError):
                self.close()
        if self._smtp is None:
            self._smtp = self._connect()
            self.connections += 1
            self._last_used = time.monotonic()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        helo = cfg.helo or None
        smtp: smtplib.SMTP | None = None
        try:
            if cfg.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, local_hostname=helo, timeout=cfg.timeout, context=cfg.ssl_context()
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=helo, timeout=cfg.timeout)
            smtp.ehlo_or_helo_if_needed()
            secure = cfg.implicit_tls
            if not secure and cfg.starttls != "off" and smtp.has_extn("starttls"):
                smtp.starttls(context=cfg.ssl_context())
                smtp.ehlo()
                secure = True
            if not secure and cfg.starttls == "required":
                raise TemporaryFailure(0, f"{cfg.host}:{cfg.port} does not offer STARTTLS, which is required")
            if cfg.username:
                if not secure and not cfg.loopback:
                    raise TemporaryFailure(0, f"refusing to send the SMTP password to {cfg.host} without TLS")
                smtp.login(cfg.username, cfg.password)
            return smtp
        except TransportFailure:
            _quietly_close(smtp)
            raise
        except smtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS or AUTH refused
            _quietly_close(smtp)
            raise TemporaryFailure(exc.smtp_code, f"SMTP setup with {cfg.host}: {_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timed out, TLS failed
            _quietly_close(smtp)
            raise TemporaryFailure(0, f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc

    @staticmethod
    def _mail_options(smtp: smtplib.SMTP, envelope: Envelope, data: bytes) -> list[str]:
        options = []
        if not data.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (envelope.sender.isascii() and all(r.isascii() for r in envelope.recipients)):
            if not smtp.has_extn("smtputf8"):
                raise PermanentFailure(0, "an address is not ASCII and the server does not offer SMTPUTF8")
            options.append("SMTPUTF8")
        return options

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()


def _quietly_close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# ----------------------------------------------------------------------------------------- mail dir


class MailDirTransport:
    """Writes each message as ``<Message-ID>.eml`` in a folder (development, or a relay that picks files up).

    A file appears whole or not at all: it is written to a temporary name in the same folder, flushed to
    disk, then renamed. Sending the same Message-ID again replaces its file, so a retried message is
    there once.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send(self, envelope: Envelope, data: bytes) -> None:
        """Write `data` as the file of `envelope.message_id`. A write error is a `TemporaryFailure`."""
        target = self.path_for(envelope.message_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TemporaryFailure(0, f"cannot write {target}: {exc.strerror or exc}") from exc

    def path_for(self, message_id: str) -> Path:
        """Where the message with `message_id` is (or would be) written."""
        return self.folder / f"{_file_name(message_id)}.eml"

    def close(self) -> None:
        """Nothing to release."""


def _file_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip().strip("<>"))[:200] or "message"


# ------------------------------------------------------------------------------------------ factory


def open_transport(settings: Settings) -> Transport:
    """SMTP when FEEDSVC_SMTP_URL is set, else .eml files under FEEDSVC_MAIL_DIR (default var/mail/); DKIM-signed
    when configured."""
    if settings.smtp_url:
        return signed(SmtpTransport(SmtpConfig.from_url(settings.smtp_url)), settings)
    return signed(MailDirTransport(settings.mail_dir), settings)

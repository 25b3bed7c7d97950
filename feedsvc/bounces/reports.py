"""Reading what comes back: RFC 3464 delivery-status reports, RFC 5965 ARF feedback reports, the non-standard
bounces flufl.bounce knows, and auto-replies. Pure: no database, no Flask.

`read_report(raw)` gives a `Report` (per recipient: action, status, diagnostic, kind), or None for a message that
is none of these (foreign mail). It raises only `ReportError`, for a message too large, nested too deep or not
readable as mail at all. What identifies the mail we sent is collected but never guessed from body text: the
addresses a report was sent to (our VERP return path), and the Message-IDs of the returned original, from an
attached ``message/rfc822`` or ``text/rfc822-headers`` part or the ARF report.
"""

from __future__ import annotations

import base64
import email
import logging
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import Compat32

from feedsvc.bounces.classify import (
    AUTO_REPLY,
    DELAYED,
    HARD,
    NONE,
    SOFT,
    BouncePolicy,
    classify_action,
    classify_feedback,
    classify_status,
    enhanced_status,
)

__all__ = ["RecipientReport", "Report", "ReportError", "read_report"]

log = logging.getLogger(__name__)

DSN, ARF, NONSTANDARD, AUTOREPLY = "dsn", "arf", "flufl", "auto_reply"
MAX_PARTS = 500
# Headers that say where a report was delivered: one of them carries our VERP address.
_DELIVERED_TO = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Rcpt-To", "Return-Path")
_HEADER_PARTS = ("text/rfc822-headers", "message/rfc822-headers")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")
_REPLY_LINE = re.compile(r"(?:^|\s)([45]\d\d[ -].{0,300}|[45]\.\d{1,3}\.\d{1,3}\b.{0,300})", re.MULTILINE)


class _RawHeaders(Compat32):
    """compat32, but header values come back as they were (raw 8-bit bytes kept as surrogates), not replaced."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


RAW_HEADERS = _RawHeaders()


class ReportError(ValueError):
    """A message that cannot be read as a report: too large, nested too deep, or not mail at all."""


@dataclass(frozen=True)
class RecipientReport:
    """One recipient of a report: its address (lower-cased, may be empty), DSN fields and the kind they mean."""

    recipient: str
    kind: str  # hard, soft, policy, complaint, delayed, auto_reply, none (feedsvc.bounces.classify)
    status: str = ""  # 5.1.1; for a complaint, the ARF Feedback-Type
    diagnostic: str = ""  # the remote server's own words
    action: str = ""


@dataclass(frozen=True)
class Report:
    """What a message reports, and what may identify the mail it is about."""

    report_type: str  # dsn, arf, flufl, auto_reply
    recipients: tuple[RecipientReport, ...]
    message_ids: tuple[str, ...] = ()  # of the returned original
    addresses: tuple[str, ...] = ()  # header values naming where the report went or the original's return path

    @property
    def changes_nothing(self) -> bool:
        """Only delayed notices, auto-replies or successes: recognised, and nothing to record."""
        return all(r.kind in (DELAYED, AUTO_REPLY, NONE) for r in self.recipients)


def read_report(raw: bytes, policy: BouncePolicy | None = None) -> Report | None:
    """The report `raw` holds, or None if it is not a bounce, complaint, delay or auto-reply. ReportError if
    unreadable."""
    policy = policy or BouncePolicy()
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ReportError("a report is bytes")
    if len(raw) > policy.max_bytes:
        raise ReportError(f"report of {len(raw)} bytes is over FEEDSVC_BOUNCE_MAX_BYTES ({policy.max_bytes})")
    raw = bytes(raw)
    if not raw.strip():
        raise ReportError("empty message")
    try:
        message = email.message_from_bytes(raw, policy=RAW_HEADERS)
        parts = list(_walk(message, policy.max_depth))
        return _read(message, parts)
    except ReportError:
        raise
    except RecursionError:
        raise ReportError(f"MIME nesting deeper than {policy.max_depth}") from None
    except Exception as exc:  # the email package and flufl.bounce on garbage: the one documented error
        raise ReportError(f"unreadable message: {type(exc).__name__}: {exc}"[:300]) from exc


def _walk(message: Message, max_depth: int, depth: int = 0) -> Iterator[Message]:
    if depth > max_depth:
        raise ReportError(f"MIME nesting deeper than {max_depth}")
    yield message
    payload = message.get_payload()
    if isinstance(payload, list):
        if len(payload) > MAX_PARTS:
            raise ReportError(f"more than {MAX_PARTS} MIME parts")
        for part in payload:
            if isinstance(part, Message):
                yield from _walk(part, max_depth, depth + 1)


def _read(message: Message, parts: list[Message]) -> Report | None:
    addresses = tuple(_text(v) for name in _DELIVERED_TO for v in message.get_all(name) or [])
    originals = [_original_headers(part) for part in parts if _is_original(part)]
    originals = [o for o in originals if o is not None]
    message_ids = tuple(dict.fromkeys(mid for o in originals for mid in _message_ids(o)))
    addresses += tuple(_text(v) for o in originals for v in o.get_all("Return-Path") or [])
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            fields = _fields(part)
            if fields:
                return _feedback(fields[0], originals, message_ids, addresses)
    for part in parts:
        if part.get_content_type() == "message/delivery-status":
            recipients = _delivery_status(part)
            if recipients:
                return Report(DSN, recipients, message_ids, addresses)
    nonstandard = _nonstandard(message) if _from_mail_system(message) else ()
    if nonstandard:
        return Report(NONSTANDARD, nonstandard, message_ids, addresses)
    if _auto_reply(message):
        sender = _address(_text(message.get("From", "")))
        return Report(AUTOREPLY, (RecipientReport(sender, AUTO_REPLY),), message_ids, addresses)
    return None


# -- headers and fields


def _text(value: object) -> str:
    """A header value as one line of text: RFC 2047 words decoded, unknown charsets and raw 8-bit read safely."""
    raw = _undo_surrogates(str(value or ""))
    try:
        chunks = decode_header(raw)
    except Exception:  # a malformed encoded word: keep the value as it came
        chunks = [(raw, None)]
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(_undo_surrogates(chunk))
        else:
            out.append(_decode(chunk, charset))
    return " ".join("".join(out).split())


def _decode(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8", "gb18030"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _undo_surrogates(text: str) -> str:
    """Raw 8-bit header bytes (kept as surrogates by the parser) read as UTF-8, else GB18030."""
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return _decode(text.encode("utf-8", "surrogateescape"), None)


def _address(value: str) -> str:
    """The address in a field like ``rfc822; Reader@Example.org`` or ``<a@b>``, lower-cased."""
    value = value.partition(";")[2] if ";" in value else value
    found = re.search(r"[^\s<>;\"']+@[^\s<>;\"']+", value)
    return found.group(0).strip(".").lower() if found else ""


def _diagnostic(value: str) -> str:
    """A Diagnostic-Code without its type (``smtp; ``), on one line."""
    kind, sep, rest = value.partition(";")
    text = rest if sep and re.fullmatch(r"\s*[A-Za-z][A-Za-z0-9-]*\s*", kind) else value
    return " ".join(text.split())[:1000]


def _fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part, whatever its encoding."""
    payload = part.get_payload()
    blocks = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        return blocks if blocks else _blocks(payload if isinstance(payload, str) else "")
    text = "".join(str(b.get_payload()) for b in blocks) if blocks else str(payload)
    data = base64.b64decode(text, validate=False) if encoding == "base64" else quopri.decodestring(text.encode())
    return _blocks(data.decode("utf-8", "replace"))


def _blocks(text: str) -> list[Message]:
    parser = HeaderParser(policy=RAW_HEADERS)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [parser.parsestr(chunk.strip() + "\n") for chunk in chunks if chunk.strip()]


def _delivery_status(part: Message) -> tuple[RecipientReport, ...]:
    blocks = _fields(part)
    recipients = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        final = _address(_text(block.get("Final-Recipient", "")))
        original = _address(_text(block.get("Original-Recipient", "")))
        action = _text(block.get("Action", "")).lower()
        status = enhanced_status(_text(block.get("Status", "")))
        diagnostic = _diagnostic(_text(block.get("Diagnostic-Code", "")))
        if not (final or original) or not (action or status):
            continue
        kind = classify_action(action, status, diagnostic)
        recipients.append(RecipientReport(final or original, kind, status, diagnostic, action))
    return tuple(recipients)


def _feedback(
    fields: Message, originals: list[Message], message_ids: tuple[str, ...], addresses: tuple[str, ...]
) -> Report:
    feedback_type = _text(fields.get("Feedback-Type", "abuse")).lower() or "abuse"
    recipient = _address(_text(fields.get("Original-Rcpt-To", "")))
    if not recipient and originals:
        recipient = _address(_text(originals[0].get("To", "")))
    words = " ".join(
        _text(fields.get(name, "")) for name in ("User-Agent", "Reported-Domain", "Source-IP") if fields.get(name)
    )
    addresses += tuple(_text(v) for v in fields.get_all("Original-Mail-From") or [])
    diagnostic = f"Feedback-Type: {feedback_type}" + (f"; {words}" if words else "")
    kind = classify_feedback(feedback_type)
    return Report(ARF, (RecipientReport(recipient, kind, feedback_type, diagnostic[:1000]),), message_ids, addresses)


# -- the returned original


def _is_original(part: Message) -> bool:
    return part.get_content_type() in ("message/rfc822", *_HEADER_PARTS)


def _original_headers(part: Message) -> Message | None:
    """The headers of a returned original: an attached message, or a text/rfc822-headers part."""
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes) or not data.strip():
        return None
    headers = HeaderParser(policy=RAW_HEADERS).parsestr(data.decode("utf-8", "surrogateescape"))
    return headers if headers.keys() else None


def _message_ids(headers: Message) -> list[str]:
    return [m.group(0) for v in headers.get_all("Message-ID") or [] for m in [_MESSAGE_ID.search(_text(v))] if m]


# -- non-standard bounces and auto-replies


def _nonstandard(message: Message) -> tuple[RecipientReport, ...]:
    """What flufl.bounce's detectors find in a bounce of no standard format (Exim, qmail, Chinese hosts, …)."""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(message)
    found = []
    words = _body_reply(message)
    for failed, is_permanent in [(a, False) for a in temporary] + [(a, True) for a in permanent]:
        address = _address(failed.decode("utf-8", "replace") if isinstance(failed, bytes) else str(failed))
        if not address:
            continue
        if words:
            kind = classify_status(enhanced_status(words), words)
            kind = SOFT if kind == HARD and not is_permanent else kind
        else:
            kind = HARD if is_permanent else SOFT
        found.append(RecipientReport(address, kind, enhanced_status(words), words, "failed"))
    return tuple({r.recipient: r for r in found}.values())


def _from_mail_system(message: Message) -> bool:
    """Sent by a mail system, not a person: the null return path, a daemon's From, or X-Failed-Recipients. Only
    such messages go to the heuristic detectors, so a letter that talks about bounces is never taken for one."""
    if message.get("X-Failed-Recipients"):
        return True
    if any(_text(v).strip() == "<>" for v in message.get_all("Return-Path") or []):
        return True
    local = _address(_text(message.get("From", ""))).partition("@")[0]
    return local in ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "mailer")


def _body_reply(message: Message) -> str:
    """The first SMTP reply in the readable text of a non-standard bounce, to show and to classify (never to match)."""
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.get_content_type() in _HEADER_PARTS:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        text = _decode(data, part.get_content_charset())
        found = _REPLY_LINE.search(text)
        if found:
            return " ".join(found.group(1).split())[:500]
    return ""


def _auto_reply(message: Message) -> bool:
    """RFC 3834 Auto-Submitted: auto-replied, X-Autoreply, X-Autorespond, Precedence: auto_reply, vacation."""
    submitted = _text(message.get("Auto-Submitted", "")).lower()
    if submitted.startswith("auto-replied"):
        return True
    if _text(message.get("X-Autoreply", "")).lower() in ("yes", "true", "1") or message.get("X-Autorespond"):
        return True
    if _text(message.get("Precedence", "")).lower() == "auto_reply":
        return True
    return "vacation" in _text(message.get("X-Mailer", "")).lower() or bool(message.get("X-Vacation"))

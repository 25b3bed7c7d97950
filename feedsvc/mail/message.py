"""One recipient's message from a rendered issue: headers, `build_message`, `serialise`, Message-ID, List-*.

The rendered parts carry plain placeholders (`MANAGE_URL`, `UNSUBSCRIBE_URL`, `RECIPIENT`); `build_message`
fills them for one reader and wraps the result in a standards-conforming `EmailMessage`, from a frame
shared by every reader of the variant, and `serialise` gives the bytes a transport sends. Every address,
link, name and Message-ID that goes into a header is checked here: no line breaks, no control characters.
Pure: no Flask, no database.
"""

from __future__ import annotations

import base64
import datetime as dt
import html as htmllib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import urlsplit

from feedsvc.config import Publication

__all__ = [
    "MANAGE_URL",
    "PLACEHOLDERS",
    "POLICY",
    "RECIPIENT",
    "UNSUBSCRIBE_URL",
    "EmailError",
    "Links",
    "RenderedEmail",
    "address",
    "build_message",
    "list_id",
    "make_message_id",
    "one_line",
    "placeholder_values",
    "serialise",
]

#: Replaced per recipient. Letters and hyphens only, so premailer and lxml pass them through untouched.
MANAGE_URL = "FEEDSVC-MANAGE-URL"
UNSUBSCRIBE_URL = "FEEDSVC-UNSUBSCRIBE-URL"
RECIPIENT = "FEEDSVC-RECIPIENT"
PLACEHOLDERS = (MANAGE_URL, UNSUBSCRIBE_URL, RECIPIENT)

# Headers are folded at 78 characters, CRLF line ends: what goes over the wire.
_HEADERS = HeaderRegistry()
POLICY = email_policy.SMTP.clone(header_factory=_HEADERS)


class EmailError(ValueError):
    """The email cannot be made as asked: an unknown section, a bad address or link, an unsafe header."""


class EmptySelection(EmailError):
    """None of the chosen sections is in this issue: there is nothing to send to this reader."""


@dataclass(frozen=True)
class RenderedEmail:
    """An issue rendered for one section set: subject, inlined HTML and text, placeholders not yet filled."""

    subject: str
    html: str
    text: str
    number: int
    sections: tuple[str, ...]  # slugs included, in issue order
    lang: str
    archive_url: str  # the "view in browser" page of the issue

    @property
    def html_bytes(self) -> int:
        """Size of the HTML part in UTF-8 (what Gmail's clipping limit is measured against)."""
        return len(self.html.encode("utf-8"))


@dataclass(frozen=True)
class Links:
    """One recipient's links: `{base_url}/manage/<token>` and `{base_url}/unsubscribe/<token>`.

    The unsubscribe URL is also the RFC 8058 one-click target (a POST to the same URL), so it must be
    absolute http(s); https in production, as Gmail and Yahoo ignore one-click over plain http.
    """

    manage: str
    unsubscribe: str

    def __post_init__(self) -> None:
        for name in ("manage", "unsubscribe"):
            _check_url(getattr(self, name), name)


def placeholder_values(recipient: str | Address, links: Links) -> tuple[tuple[str, str], ...]:
    """(placeholder, value) for one recipient: their manage and unsubscribe links and their address."""
    return ((MANAGE_URL, links.manage), (UNSUBSCRIBE_URL, links.unsubscribe), (RECIPIENT, address(recipient).addr_spec))


# --------------------------------------------------------------------------------------------- message


def build_message(
    rendered: RenderedEmail,
    recipient: str | Address,
    links: Links,
    publication: Publication,
    *,
    message_id: str | None = None,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """The message for one recipient: multipart/alternative (text/plain, then text/html), UTF-8, base64.

    Headers: Subject (RFC 2047), From with display name, To, Reply-To (if configured), Date, Message-ID on
    the publication's mail domain (pass `message_id` to make retries of one outbox row share it), List-Id
    (RFC 2919), List-Unsubscribe with the https URL and the configured mailto, List-Unsubscribe-Post
    (RFC 8058 one-click), List-Archive, List-Post: NO and Auto-Submitted. Names and subjects are made one
    line; an address, link or Message-ID with line breaks or other control characters is refused.

    The result is an ordinary `EmailMessage`. What is the same for every reader of this variant (headers,
    part headers) is built once and shared; `serialise` writes an unchanged message from those pieces
    instead of running the generic generator, with identical bytes (tested), and falls back to the generic
    generator as soon as the message has been modified.
    """
    frame = _frame(rendered, publication)
    values = placeholder_values(recipient, links)
    to = address(recipient)
    if to.display_name or not to.addr_spec.isascii():
        to_value: Any = POLICY.header_store_parse("To", to)[1]
    else:
        to_value = to.addr_spec  # plain ASCII: parsed only if someone reads it
    message_id = _check_message_id(message_id) if message_id else make_message_id(publication)
    date_value = format_datetime(date or dt.datetime.now(dt.UTC))
    unsubscribe = POLICY.header_store_parse("List-Unsubscribe", ", ".join([f"<{links.unsubscribe}>", *frame.mailto]))
    message = _NewsletterMessage(policy=POLICY)
    message._headers = [
        *frame.head,
        ("To", to_value),
        *frame.reply_to,
        ("Date", date_value),
        ("Message-ID", message_id),
        *frame.list_id,
        unsubscribe,
        *frame.tail,
    ]
    text_b64 = frame.text_body.encode(values, escape=False)
    html_b64 = frame.html_body.encode(values, escape=True)
    text_part, html_part = EmailMessage(policy=POLICY), EmailMessage(policy=POLICY)
    text_part._headers, text_part._payload = list(frame.text_headers), text_b64.decode("ascii")
    html_part._headers, html_part._payload = list(frame.html_headers), html_b64.decode("ascii")
    message._payload = [text_part, html_part]
    message._prepared = (frame, tuple(message._headers), text_part, html_part, text_b64, html_b64)
    return message


def serialise(message: EmailMessage) -> bytes:
    """The bytes of `message` as sent over SMTP and written to .eml files (CRLF, folded at 78)."""
    return message.as_bytes(policy=POLICY)


@dataclass(frozen=True)
class _Frame:
    """What every reader of one variant shares: header objects, their folded bytes, the part headers."""

    head: tuple[tuple[str, Any], ...]  # Subject, From
    reply_to: tuple[tuple[str, Any], ...]
    list_id: tuple[tuple[str, Any], ...]
    tail: tuple[tuple[str, Any], ...]  # List-Unsubscribe-Post … Content-Type
    mailto: tuple[str, ...]
    text_headers: tuple[tuple[str, Any], ...]
    html_headers: tuple[tuple[str, Any], ...]
    boundary: bytes
    folded: dict[int, bytes]  # id(header object) -> its folded bytes
    text_body: _Body
    html_body: _Body

    def fold(self, name: str, value: Any) -> bytes:
        return self.folded.get(id(value)) or POLICY.fold_binary(name, value)


@lru_cache(maxsize=128)  # like the render cache: one frame per variant being sent
def _frame(rendered: RenderedEmail, publication: Publication) -> _Frame:
    def header(name: str, value: object) -> tuple[str, Any]:
        return POLICY.header_store_parse(name, value)

    sender = address(Address(one_line(publication.from_name or publication.name), addr_spec=publication.from_address))
    boundary = f"=_feedsvc-{secrets.token_hex(12)}"  # "=_" never occurs in base64 or in the part headers
    head = (header("Subject", one_line(rendered.subject)), header("From", sender))
    reply_to = (header("Reply-To", address(publication.reply_to)),) if publication.reply_to else ()
    tail = (
        header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        header("List-Archive", f"<{_check_url(publication.base_url + '/issues/', 'archive')}>"),
        header("List-Post", "NO"),
        header("Feedback-ID", feedback_id(rendered, list_id(publication), publication)),
        header("Auto-Submitted", "auto-generated"),
        header("MIME-Version", "1.0"),
        header("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    )
    parts = [
        (header("Content-Type", f'text/{kind}; charset="utf-8"'), header("Content-Transfer-Encoding", "base64"))
        for kind in ("plain", "html")
    ]
    list_ids = (header("List-Id", list_id(publication)),)
    mailto = (f"<{_mailto(publication.unsubscribe_mailto)}>",) if publication.unsubscribe_mailto else ()
    shared = [*head, *reply_to, *list_ids, *tail, *parts[0], *parts[1]]
    return _Frame(
        head=head,
        reply_to=reply_to,
        list_id=list_ids,
        tail=tail,
        mailto=mailto,
        text_headers=parts[0],
        html_headers=parts[1],
        boundary=boundary.encode("ascii"),
        folded={id(value): POLICY.fold_binary(name, value) for name, value in shared},
        text_body=_Body.of(rendered.text),
        html_body=_Body.of(rendered.html),
    )


@dataclass(frozen=True)
class _Body:
    """A part's body with placeholders, split where base64 can be split: a constant, pre-encoded head
    (whole 57-byte lines, everything before the first placeholder) and the rest, encoded per recipient.

    The result is byte for byte what `set_content(text, cte="base64")` stores for the personalised text:
    CRLF line ends, base64 in 76-column lines. Substituted values have no line breaks (they are checked),
    so normalising the line ends before substituting gives the same bytes as after.
    """

    head: bytes  # base64 of the first `cut` bytes, LF-terminated lines
    rest: bytes  # the remaining CRLF-normalised UTF-8 bytes, placeholders included

    @classmethod
    def of(cls, text: str) -> _Body:
        data = b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n"
        first = min((i for i in (data.find(p.encode()) for p in PLACEHOLDERS) if i >= 0), default=len(data))
        cut = first // 57 * 57  # base64.encodebytes writes 57 bytes per line
        return cls(base64.encodebytes(data[:cut]) if cut else b"", data[cut:])

    def encode(self, values: tuple[tuple[str, str], ...], *, escape: bool) -> bytes:
        rest = self.rest
        for placeholder, value in values:
            rest = rest.replace(placeholder.encode(), (htmllib.escape(value, quote=True) if escape else value).encode())
        return self.head + base64.encodebytes(rest)


class _NewsletterMessage(EmailMessage):
    """An `EmailMessage` made by `build_message`, which knows how to write itself quickly while unchanged."""

    _prepared: tuple[Any, ...] | None = None

    def as_bytes(self, unixfrom: bool = False, policy: email_policy.Policy | None = None) -> bytes:
        fast = self._fast_bytes() if not unixfrom and policy in (None, POLICY) else None
        return fast if fast is not None else super().as_bytes(unixfrom=unixfrom, policy=policy)

    def _fast_bytes(self) -> bytes | None:
        """The message as the generator would write it, from the prepared pieces; None if it was changed."""
        if self._prepared is None or self.policy is not POLICY:
            return None
        frame, headers, text_part, html_part, text_b64, html_b64 = self._prepared
        unchanged = (
            len(self._headers) == len(headers)
            and all(a is b for a, b in zip(self._headers, headers, strict=True))
            and isinstance(self._payload, list)
            and len(self._payload) == 2
            and self._payload[0] is text_part
            and self._payload[1] is html_part
            and self.preamble is None
            and self.epilogue is None
            and all(
                part.policy is POLICY
                and part.preamble is None
                and len(part._headers) == 2
                and all(a is b for a, b in zip(part._headers, expected, strict=True))
                and part._payload == body.decode("ascii")
                for part, expected, body in (
                    (text_part, frame.text_headers, text_b64),
                    (html_part, frame.html_headers, html_b64),
                )
            )
        )
        if not unchanged:
            return None
        delimiter = b"--" + frame.boundary
        out = [frame.fold(name, value) for name, value in self._headers]
        out += [b"\r\n", delimiter, b"\r\n"]
        for index, (expected, body) in enumerate(((frame.text_headers, text_b64), (frame.html_headers, html_b64))):
            if index:
                out += [b"\r\n", delimiter, b"\r\n"]
            out += [frame.fold(name, value) for name, value in expected]
            out += [b"\r\n", body.replace(b"\n", b"\r\n")]
        out += [b"\r\n", delimiter, b"--\r\n"]
        return b"".join(out)


def _check_message_id(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"<[!-;=?-~]+@[!-;=?-~]+>", value):  # printable ASCII, no spaces or angle brackets
        raise EmailError(f"{value!r} is not a Message-ID like <unique@domain>")
    return value


def make_message_id(publication: Publication, *parts: str | int) -> str:
    """A Message-ID on the publication's mail domain: random, or built from `parts` (e.g. an outbox row id)."""
    domain = publication.mail_domain
    if not parts:
        return make_msgid(domain=domain)
    local = ".".join(re.sub(r"[^A-Za-z0-9_-]", "-", str(p)) for p in parts)
    return f"<{local}@{domain}>"


def list_id(publication: Publication) -> str:
    """RFC 2919 List-Id: the publication's name and ``<local-part.mail-domain>`` of the sender address."""
    local = re.sub(r"[^A-Za-z0-9-]+", "-", publication.from_address.partition("@")[0]).strip("-") or "newsletter"
    ident = f"{local.lower()}.{publication.mail_domain.lower()}"
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", ident):
        raise EmailError(f"cannot make a List-Id from the sender address {publication.from_address!r}")
    name = one_line(publication.name)
    phrase = name if name.isascii() else Header(name, "utf-8").encode(maxlinelen=76).replace("\n", "")
    return f"{phrase} <{ident}>"


class _ListHeader:
    """List-Id, List-Unsubscribe, List-Archive and the like: ASCII, folded at spaces, never RFC 2047-encoded.

    The stock unstructured header would encode a word longer than the line (any real unsubscribe URL) as
    ``=?utf-8?q?=3Chttps...?=``, which no mail client reads as a URL.
    """

    max_count: ClassVar[int | None] = 1

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        value = str(value)
        if not value.isascii() or any(unicodedata.category(c) == "Cc" for c in value):
            raise EmailError(f"header value {value!r} must be one line of ASCII")
        kwds["parse_tree"] = None
        kwds["decoded"] = value

    def init(self, name: str, *, parse_tree: object, defects: list) -> None:
        self._name, self._parse_tree, self._defects = name, parse_tree, defects

    def fold(self, *, policy: email_policy.EmailPolicy) -> str:
        width = policy.max_line_length or 78
        lines = [f"{self._name}:"]  # type: ignore[attr-defined]
        for word in str(self).split():
            if len(lines[-1]) + 1 + len(word) > width and lines[-1] != f"{self._name}:":  # type: ignore[attr-defined]
                lines.append("")
            lines[-1] += " " + word
        if max(len(line) for line in lines) > 998:
            raise EmailError(f"{self._name} has a word longer than 998 characters")  # type: ignore[attr-defined]
        return policy.linesep.join(lines) + policy.linesep


for _name in ("list-id", "list-unsubscribe", "list-unsubscribe-post", "list-archive", "list-post", "feedback-id"):
    _HEADERS.map_to_type(_name, _ListHeader)


# -------------------------------------------------------------------------------------- header checks


def one_line(text: str) -> str:
    """`text` with every line break and control character turned into one space: safe in a header."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(cleaned.split())


def address(value: str | Address) -> Address:
    """An `Address` whose addr-spec has no control characters or spaces and whose name is one line."""
    if isinstance(value, Address):
        name, spec = value.display_name, value.addr_spec
    else:
        name, spec = "", value
    if not spec or any(c.isspace() or unicodedata.category(c) == "Cc" for c in spec) or spec.count("@") != 1:
        raise EmailError(f"{spec!r} is not a single email address")
    local, _, domain = spec.rpartition("@")
    if not local or not domain or '"' in spec or "<" in spec or ">" in spec or "," in spec:
        raise EmailError(f"{spec!r} is not a plain email address")
    return Address(display_name=one_line(name), username=local, domain=domain)


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or not url.isascii()
        or any(c.isspace() or unicodedata.category(c) == "Cc" or c in '<>"' for c in url)
    ):
        raise EmailError(f"the {what} link must be an absolute http(s) URL without spaces or quotes: {url!r}")
    return url


def _mailto(value: str) -> str:
    value = value.strip()
    if not value.startswith("mailto:"):
        value = f"mailto:{address(value).addr_spec}?subject=unsubscribe"
    if not value.isascii() or any(c.isspace() or unicodedata.category(c) == "Cc" or c in '<>"' for c in value):
        raise EmailError(f"the unsubscribe mailto {value!r} must be one ASCII URL")
    return value


def feedback_id(rendered: RenderedEmail, list_id: str, publication: Publication) -> str:
    """Gmail's Feedback-ID ``<issue>:<variant>:<list>:<sender>``, e.g. ``398:s3f.zh-CN:newsletter:example.org``.

    The variant is the section set as a bit mask of the configured sections in order (``s1`` the first
    alone, ``s3f`` six of them), then the language; the list is the local part of the List-Id header value
    `list_id`; the sender the signing domain (else the mail domain). Short enough for one 78-column line,
    and nothing about the recipient: every reader of a variant gets the same value.
    """
    chosen = set(rendered.sections)
    mask = sum(1 << index for index, section in enumerate(publication.sections) if section.slug in chosen)
    fields = [
        str(rendered.number),
        f"s{mask:x}.{rendered.lang}",
        list_id.rpartition("<")[2].rstrip(">").partition(".")[0],
        publication.dkim_domain or publication.mail_domain,
    ]
    return ":".join(re.sub(r"[^A-Za-z0-9._-]", "-", field) for field in fields)

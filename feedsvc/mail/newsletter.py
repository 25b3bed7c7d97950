"""The newsletter email: one inlined HTML and one plain-text rendition per (issue, section set). Pure.

Inlining CSS with premailer is the expensive step, so it runs once per distinct section choice, never per
subscriber. The rendered parts carry plain placeholders (`MANAGE_URL`, `UNSUBSCRIBE_URL`, `RECIPIENT`) that
premailer leaves alone (it URL-encodes ``{{ x }}`` inside href; these are letters and hyphens), and
`personalise` swaps in each recipient's values with `str.replace`. `build_message` wraps that in a
standards-conforming `EmailMessage`; `serialise` gives the bytes a transport sends.

Nothing here imports Flask or the database: callers pass the `Issue`, the `Publication` and the links.
"""

from __future__ import annotations

import base64
import datetime as dt
import html as htmllib
import logging
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from premailer import Premailer

from feedsvc.config import Publication
from feedsvc.content.reader import Issue
from feedsvc.i18n import DEFAULT_LANGUAGE, LANGUAGES
from feedsvc.mail import dkim
from feedsvc.mail.templates import environment

__all__ = [
    "MANAGE_URL",
    "PLACEHOLDERS",
    "RECIPIENT",
    "UNSUBSCRIBE_URL",
    "EmailError",
    "EmptySelection",
    "Links",
    "RenderedEmail",
    "build_message",
    "inline_css",
    "make_message_id",
    "personalise",
    "render",
    "render_source",
    "serialise",
    "subject_for",
]

#: Replaced per recipient. Letters and hyphens only, so premailer and lxml pass them through untouched.
MANAGE_URL = "FEEDSVC-MANAGE-URL"
UNSUBSCRIBE_URL = "FEEDSVC-UNSUBSCRIBE-URL"
RECIPIENT = "FEEDSVC-RECIPIENT"
PLACEHOLDERS = (MANAGE_URL, UNSUBSCRIBE_URL, RECIPIENT)
_PLACEHOLDER_PREFIX = "FEEDSVC-"
# Issue text that happens to contain a placeholder must not be filled in: its hyphen becomes a
# non-breaking hyphen (U+2011), which looks the same and matches nothing.
_DEFUSED_PREFIX = "FEEDSVC\u2011"

#: The repository's templates/ (the CLI and app pass settings.templates_dir instead).
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

#: Gmail clips a message whose HTML is larger than about 102 KB ("[Message clipped]").
GMAIL_CLIP_BYTES = 102 * 1024

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


# ------------------------------------------------------------------------------------------ rendering


def subject_for(issue: Issue) -> str:
    """``行业动态周报 第398期（2024年1月22日）``, or the issue's own subject (front matter) when it has one."""
    if issue.subject:
        return _one_line(issue.subject)
    d = issue.date
    return _one_line(f"{issue.title} 第{issue.number}期（{d.year}年{d.month}月{d.day}日）")


def render(
    issue: Issue,
    sections: Iterable[str] | str | None,
    publication: Publication,
    *,
    lang: str = DEFAULT_LANGUAGE,
    templates: Path | None = None,
) -> RenderedEmail:
    """Render and inline `issue` restricted to `sections` (slugs; "all" or None for every section).

    Results are cached per (issue, sections present in it, language, templates), so a send renders each
    distinct choice once. Unknown slugs raise `EmailError`; a choice that leaves nothing of this issue
    raises `EmptySelection`.
    """
    chosen = _selection(issue, sections, publication)
    _check_language(lang)
    folder = str((templates or DEFAULT_TEMPLATES).resolve())
    return _render_cached(issue, chosen, publication, lang, folder)


def inline_css(html: str) -> str:
    """Move the stylesheet rules of `html` into style attributes (premailer), offline and quietly.

    Styles marked ``data-premailer="ignore"`` (media queries, dark mode) stay in the head untouched.
    """
    return Premailer(
        html,
        base_url=None,  # no link rewriting: every URL in the template is absolute or a placeholder
        allow_network=False,  # never fetch a stylesheet
        disable_validation=True,  # cssutils validation is slow and only logs
        disable_link_rewrites=True,
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,  # the media queries select by class
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=True)


def personalise(rendered: RenderedEmail, recipient: str | Address, links: Links) -> RenderedEmail:
    """`rendered` with one recipient's address and links in place of the placeholders.

    Values are HTML-escaped for the HTML part and inserted as they are into the text part.
    """
    html, text = rendered.html, rendered.text
    for placeholder, value in _values(recipient, links):
        html = html.replace(placeholder, htmllib.escape(value, quote=True))
        text = text.replace(placeholder, value)
    return replace(rendered, html=html, text=text)


def _values(recipient: str | Address, links: Links) -> tuple[tuple[str, str], ...]:
    return ((MANAGE_URL, links.manage), (UNSUBSCRIBE_URL, links.unsubscribe), (RECIPIENT, _addr_spec(recipient)))


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
    values = _values(recipient, links)
    to = _address(recipient)
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

    sender = _address(Address(_one_line(publication.from_name or publication.name), addr_spec=publication.from_address))
    boundary = f"=_feedsvc-{secrets.token_hex(12)}"  # "=_" never occurs in base64 or in the part headers
    head = (header("Subject", _one_line(rendered.subject)), header("From", sender))
    reply_to = (header("Reply-To", _address(publication.reply_to)),) if publication.reply_to else ()
    tail = (
        header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        header("List-Archive", f"<{_check_url(publication.base_url + '/issues/', 'archive')}>"),
        header("List-Post", "NO"),
        header(
            "Feedback-ID",
            dkim.feedback_id(rendered.number, rendered.sections, rendered.lang, list_id(publication), publication),
        ),
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


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise EmailError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")


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
    name = _one_line(publication.name)
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


# -------------------------------------------------------------------------------------------- helpers


def _selection(issue: Issue, sections: Iterable[str] | str | None, publication: Publication) -> tuple[str, ...]:
    """The chosen slugs present in `issue`, in issue order."""
    if sections is None or sections == "all":
        wanted = set(publication.slugs)
    else:
        if isinstance(sections, str):
            sections = sections.split(",")
        wanted = {s.strip() for s in sections if s.strip()}
        unknown = sorted(wanted - set(publication.slugs))
        if unknown:
            raise EmailError(
                f"unknown section {', '.join(unknown)}; the sections are {', '.join(publication.slugs)} (or all)"
            )
    chosen = tuple(s.slug for s in issue.sections if s.slug in wanted and s.items)
    if not chosen:
        raise EmptySelection(
            f"issue {issue.number} has nothing in the sections {', '.join(sorted(wanted)) or '(none)'}"
        )
    return chosen


def render_source(
    issue: Issue,
    sections: Iterable[str] | str | None,
    publication: Publication,
    *,
    lang: str = DEFAULT_LANGUAGE,
    templates: Path | None = None,
) -> tuple[str, str]:
    """The HTML before inlining and the text part, uncached (for `render`, benchmarks and template work)."""
    chosen = _selection(issue, sections, publication)
    _check_language(lang)
    folder = str((templates or DEFAULT_TEMPLATES).resolve())
    return _source(issue, chosen, publication, lang, folder)


def _source(issue: Issue, chosen: tuple[str, ...], publication: Publication, lang: str, folder: str) -> tuple[str, str]:
    whole = _defuse_issue(issue)
    part = whole.only(chosen)
    env = environment(folder, lang)
    context = _context(part, whole, publication, lang)
    html = env.get_template("email/issue.html").render(context)
    text = _tidy_text(env.get_template("email/issue.txt").render(context))
    return html, text


@lru_cache(maxsize=128)  # 6 sections make 63 possible choices; every one fits
def _render_cached(
    issue: Issue, chosen: tuple[str, ...], publication: Publication, lang: str, folder: str
) -> RenderedEmail:
    html, text = _source(issue, chosen, publication, lang, folder)
    return RenderedEmail(
        subject=subject_for(issue),
        html=inline_css(html),
        text=text,
        number=issue.number,
        sections=chosen,
        lang=lang,
        archive_url=f"{publication.base_url}/issues/{issue.number}",
    )


render.cache_clear = _render_cached.cache_clear  # type: ignore[attr-defined]


def _context(part: Issue, whole: Issue, publication: Publication, lang: str) -> dict[str, Any]:
    english = lang == "en"
    names = {s.slug: (s.name_en if english and s.name_en else s.name) for s in publication.sections}
    names.update({s.slug: names.get(s.slug, s.name) for s in part.sections})
    included = [names[s.slug] for s in part.sections]
    summary = _summary(part, whole)
    d = part.date
    date_text = d.strftime("%-d %B %Y") if english else f"{d.year} 年 {d.month} 月 {d.day} 日"
    name = publication.name_en if english and publication.name_en else publication.name
    return {
        "issue": part,
        "subject": subject_for(whole),
        "content_lang": publication.language,
        "chrome_lang": lang if lang != publication.language else "",
        "date_text": date_text,
        "colon": ": " if english else "：",
        "summary": summary,
        "preheader": "；".join(summary) if summary else "",
        # Fills the inbox preview after the preheader so that it does not run on into the body text.
        "preheader_padding": "\u2007\u034f" * 60,  # figure space, combining grapheme joiner
        "section_names": names,
        "included_names": ("、" if not english else ", ").join(included),
        "publication_name": f"《{name}》" if not english else name,
        "archive_url": f"{publication.base_url}/issues/{part.number}",
        "colophon": [_colophon_line(line) for line in part.colophon],
        "postal_address": publication.postal_address,
    }


def _summary(part: Issue, whole: Issue) -> list[str]:
    """The highlights that belong to the included sections (a highlight naming no item is always kept)."""
    titles_in = {item.title for _, item in part.items}
    titles_all = {item.title for _, item in whole.items}
    kept = [line for line in part.summary if line in titles_in or line not in titles_all]
    return kept or [item.title for _, item in list(part.items)[:3]]


def _colophon_line(line: str) -> tuple[str, str]:
    """``编辑部：中国…`` as (label with its colon, rest), for a bold label."""
    match = re.match(r"^([^：:]{1,8}[：:])(.*)$", line)
    return (match.group(1), match.group(2)) if match else ("", line)


def _defuse(text: str) -> str:
    return text.replace(_PLACEHOLDER_PREFIX, _DEFUSED_PREFIX) if _PLACEHOLDER_PREFIX in text else text


def _defuse_issue(issue: Issue) -> Issue:
    """The issue with any placeholder-looking text made inert (it would otherwise be filled per recipient)."""
    haystack = [issue.title, issue.publisher, issue.subject or "", *issue.summary, *issue.colophon]
    haystack += [f"{s.name}{i.title}{i.html}{i.text}" for s, i in issue.items]
    if not any(_PLACEHOLDER_PREFIX in h for h in haystack):
        return issue
    sections = tuple(
        replace(
            s,
            name=_defuse(s.name),
            items=tuple(
                replace(i, title=_defuse(i.title), html=_defuse(i.html), text=_defuse(i.text)) for i in s.items
            ),
        )
        for s in issue.sections
    )
    return replace(
        issue,
        title=_defuse(issue.title),
        publisher=_defuse(issue.publisher),
        subject=_defuse(issue.subject) if issue.subject else issue.subject,
        summary=tuple(map(_defuse, issue.summary)),
        colophon=tuple(map(_defuse, issue.colophon)),
        sections=sections,
    )


def _tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _one_line(text: str) -> str:
    """`text` with every line break and control character turned into one space: safe in a header."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(cleaned.split())


def _addr_spec(recipient: str | Address) -> str:
    return _address(recipient).addr_spec


def _address(value: str | Address) -> Address:
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
    return Address(display_name=_one_line(name), username=local, domain=domain)


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
        value = f"mailto:{_address(value).addr_spec}?subject=unsubscribe"
    if not value.isascii() or any(c.isspace() or unicodedata.category(c) == "Cc" or c in '<>"' for c in value):
        raise EmailError(f"the unsubscribe mailto {value!r} must be one ASCII URL")
    return value

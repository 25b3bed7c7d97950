"""Sample mail for the publisher: the stand-in links of previews, and the marked test send (CLI and admin alike).

A preview or test copy goes to the publisher, not to a subscriber, so its manage and unsubscribe links
carry a visible stand-in token that names nobody, and a test copy's subject is marked so that it is never
mistaken for the issue itself. Pure apart from the transport it sends through; no Flask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from email.message import EmailMessage

from feedsvc.config import Publication, Settings
from feedsvc.mail.message import EmailError, Links, RenderedEmail, build_message
from feedsvc.mail.transport import Transport, TransportFailure, open_transport, prepare

__all__ = [
    "PREVIEW_TOKEN",
    "TEST_MARK",
    "SampleOutcome",
    "SampleRecipient",
    "build_test_message",
    "parse_test_recipients",
    "sample_links",
    "send_test_message",
    "send_test_messages",
]

#: The token in preview and test links; real ones are made per subscriber when the issue is sent.
PREVIEW_TOKEN = "preview"  # noqa: S105 - a visible stand-in, not a secret
#: What a test copy's subject starts with.
TEST_MARK = "[测试 TEST]"


def sample_links(publication: Publication) -> Links:
    """The manage and unsubscribe links of a preview or a test copy: real pages, with a token that names nobody."""
    base = publication.base_url
    return Links(f"{base}/manage/{PREVIEW_TOKEN}", f"{base}/unsubscribe/{PREVIEW_TOKEN}")


def build_test_message(rendered: RenderedEmail, address: str, publication: Publication) -> EmailMessage:
    """The test copy of `rendered` for `address`: the subject marked, the sample links."""
    marked = replace(rendered, subject=f"{TEST_MARK} {rendered.subject}")
    return build_message(marked, address, sample_links(publication), publication)


def send_test_message(
    rendered: RenderedEmail, address: str, settings: Settings, transport: Transport | None = None
) -> str:
    """Send the test copy of `rendered` to `address` now (through `transport`, else the configured one).

    Returns its Message-ID. Raises `EmailError` for an unusable address and `TransportFailure` when the
    message was not accepted.
    """
    envelope, data = prepare(build_test_message(rendered, address, settings.publication))
    own = transport is None
    transport = transport or open_transport(settings)
    try:
        transport.send(envelope, data)
    finally:
        if own:
            transport.close()
    return envelope.message_id


@dataclass(frozen=True)
class SampleRecipient:
    """One address of a test send and the section choice its copy is rendered for ("all" or slugs, commas)."""

    address: str
    sections: str


@dataclass(frozen=True)
class SampleOutcome:
    """The outcome for one test recipient: its Message-ID, or the error that stopped it."""

    recipient: SampleRecipient
    message_id: str = ""
    error: str = ""


def parse_test_recipients(text: str, default_sections: str = "all") -> list[SampleRecipient]:
    """`a@x=industry+research,b@y`: addresses split by commas, each with `=` and its sections joined by `+`
    (none: `default_sections`). Empty parts are ignored."""
    found = []
    for part in text.split(","):
        address, _, sections = part.strip().partition("=")
        if address:
            found.append(SampleRecipient(address.strip(), sections.replace("+", ",").strip() or default_sections))
    return found


def send_test_messages(
    render_for: Callable[[str], RenderedEmail],
    recipients: list[SampleRecipient],
    settings: Settings,
    transport: Transport | None = None,
) -> list[SampleOutcome]:
    """Send each recipient the marked test copy of `render_for(its sections)` over one transport connection;
    one outcome per recipient, in order. A failure for one address does not stop the others."""
    own = transport is None
    transport = transport or open_transport(settings)
    rendered: dict[str, RenderedEmail] = {}
    outcomes = []
    try:
        for recipient in recipients:
            try:
                if recipient.sections not in rendered:
                    rendered[recipient.sections] = render_for(recipient.sections)
                message_id = send_test_message(rendered[recipient.sections], recipient.address, settings, transport)
            except EmailError as exc:
                outcomes.append(SampleOutcome(recipient, error=str(exc)))
            except TransportFailure as exc:
                kind = "temporary" if exc.temporary else "permanent"
                outcomes.append(SampleOutcome(recipient, error=f"{kind}: {exc}"))
            else:
                outcomes.append(SampleOutcome(recipient, message_id=message_id))
    finally:
        if own:
            transport.close()
    return outcomes

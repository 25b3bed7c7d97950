"""Sample mail for the publisher: the stand-in links of previews, and the marked test send (CLI and admin alike).

A preview or test copy goes to the publisher, not to a subscriber, so its manage and unsubscribe links
carry a visible stand-in token that names nobody, and a test copy's subject is marked so that it is never
mistaken for the issue itself. Pure apart from the transport it sends through; no Flask.
"""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage

from feedsvc.config import Publication, Settings
from feedsvc.mail.message import Links, RenderedEmail, build_message
from feedsvc.mail.transport import Transport, open_transport, prepare

__all__ = ["PREVIEW_TOKEN", "TEST_MARK", "build_test_message", "sample_links", "send_test_message"]

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

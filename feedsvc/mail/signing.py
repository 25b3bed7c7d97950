"""The one place every outgoing message is DKIM-signed: a transport wrapper that signs the final bytes.

`open_transport` wraps what it returns with `signed`, so issue mail, notices and test sends are all signed
after personalisation, on the exact bytes that go over the wire or into the .eml file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feedsvc.config import Settings

if TYPE_CHECKING:
    from feedsvc.mail.dkim import Signer
    from feedsvc.mail.transport import Envelope, Transport

__all__ = ["ED25519_KEY_FILE", "KEY_FILE", "KEY_TEXT", "SigningTransport", "configured", "signed"]

# The DKIM key variables (feedsvc.mail.dkim reads them); named here so that `signed` can tell, without
# loading dkimpy and cryptography (some 6 MB in every worker), that nothing asks for DKIM.
KEY_FILE, KEY_TEXT, ED25519_KEY_FILE = "FEEDSVC_DKIM_KEY_FILE", "FEEDSVC_DKIM_KEY", "FEEDSVC_DKIM_ED25519_KEY_FILE"


def configured(settings: Settings) -> bool:
    """Whether `settings` ask for DKIM at all (a selector, a domain or a key): only then is dkimpy loaded."""
    publication = settings.publication
    keys = (settings.extra.get(name, "").strip() for name in (KEY_FILE, KEY_TEXT, ED25519_KEY_FILE))
    return bool(publication.dkim_selector or publication.dkim_domain or any(keys))


def signed(transport: Transport, settings: Settings) -> Transport:
    """`transport`, signing every message when DKIM is configured in `settings` (else `transport` itself)."""
    if not configured(settings):
        return transport
    from feedsvc.mail.dkim import Signer

    signer = Signer.from_settings(settings)
    return transport if signer is None else SigningTransport(transport, signer)


class SigningTransport:
    """Sends through `inner`, whose bytes of every message are signed by `signer` on the way out."""

    def __init__(self, inner: Transport, signer: Signer) -> None:
        self.inner, self.signer = inner, signer

    def send(self, envelope: Envelope, data: bytes) -> None:
        """Sign `data` and send it; the inner transport's failures, unchanged."""
        self.inner.send(envelope, self.signer.sign(data))

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # connections, path_for, config: the inner transport's
        return getattr(self.inner, name)

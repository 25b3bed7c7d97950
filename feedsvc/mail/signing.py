"""The one place every outgoing message is DKIM-signed: a transport wrapper that signs the final bytes.

`open_transport` wraps what it returns with `signed`, so issue mail, notices and test sends are all signed
after personalisation, on the exact bytes that go over the wire or into the .eml file.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from feedsvc.config import Settings
from feedsvc.mail.dkim import Signer

if TYPE_CHECKING:
    from feedsvc.mail.transport import Transport

__all__ = ["SigningTransport", "signed"]


def signed(transport: Transport, settings: Settings) -> Transport:
    """`transport`, signing every message when DKIM is configured in `settings` (else `transport` itself)."""
    signer = Signer.from_settings(settings)
    return transport if signer is None else SigningTransport(transport, signer)


class SigningTransport:
    """Sends through `inner`, whose bytes of every message are signed by `signer` on the way out."""

    def __init__(self, inner: Transport, signer: Signer) -> None:
        self.inner, self.signer = inner, signer

    def send(self, message: EmailMessage) -> str:
        """Sign and send `message`; the inner transport's result and failures, unchanged."""
        return self.inner.send(_SignedMessage(message, self.signer))

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # connections, path_for, config: the inner transport's
        return getattr(self.inner, name)


class _SignedMessage(EmailMessage):
    """`message` as the transport sees it: its headers (read and completed in place: Message-ID, Date, Bcc),
    and its bytes signed. Only while `Transport.send` takes a message rather than (envelope, bytes)."""

    def __init__(self, message: EmailMessage, signer: Signer) -> None:
        super().__init__(policy=message.policy)
        self._message, self._signer = message, signer

    def get_all(self, name: str, failobj: Any = None) -> Any:
        return self._message.get_all(name, failobj)

    def __getitem__(self, name: str) -> Any:
        return self._message[name]

    def __contains__(self, name: object) -> bool:
        return name in self._message

    def __setitem__(self, name: str, value: Any) -> None:
        self._message[name] = value

    def __delitem__(self, name: str) -> None:
        del self._message[name]

    def as_bytes(self, unixfrom: bool = False, policy: Any = None) -> bytes:
        return self._signer.sign(self._message.as_bytes(unixfrom=unixfrom, policy=policy))

    def __bytes__(self) -> bytes:
        return self.as_bytes()

"""What an email address is here: one normalised, sendable ASCII form per mailbox. No Flask.

NFKC first (a full-width ``ａ@example.com`` is ``a@example.com``), then the syntax check (no DNS). The domain
is kept in its IDNA (``xn--``) form, which every relay accepts in a ``To:`` header; a non-ASCII local part
is refused with a clear reason, since it needs SMTPUTF8 end to end and would otherwise go out as a broken
encoded-word header. The whole address is lower-cased: local parts are case-sensitive on paper, but no
mail system a newsletter reaches treats them so, and one person must not subscribe twice as A@x and a@x.
"""

from __future__ import annotations

import unicodedata

MAX_ADDRESS_LENGTH = 254


class InvalidAddress(ValueError):
    """The address cannot be an email address here; the message says why (for the form and the import)."""


class UnsendableAddress(InvalidAddress):
    """A valid address whose local part is not ASCII: it needs SMTPUTF8, which mail from here does not use."""


def normalise_email(raw: str) -> str:
    """The canonical form of an address: NFKC, syntax checked, ASCII local part, IDNA domain, lower-cased.

    Never cached: a sign-up normalises the form's address twice (about 0.1 ms each), but a cache would answer
    faster for an address this process saw recently, which is the timing a sign-up must not have.
    """
    raw = unicodedata.normalize("NFKC", (raw or "").strip())
    if not raw or len(raw) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("empty or too long")
    local = raw.rpartition("@")[0]
    if not local.isascii():
        raise UnsendableAddress("the part before @ is not ASCII (needs SMTPUTF8), which this list cannot mail")
    from email_validator import EmailNotValidError, validate_email  # with idna: only once an address is checked

    try:
        info = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    assert info.ascii_email is not None  # allow_smtputf8=False guarantees it
    return info.ascii_email.lower()


def unicode_form(email: str) -> str:
    """`email` with its domain in Unicode: the form addresses were stored in before IDNA domains (hashes)."""
    local, _, domain = email.rpartition("@")
    if "xn--" not in domain:
        return email
    try:
        return f"{local}@{domain.encode('ascii').decode('idna')}"
    except UnicodeError:
        return email

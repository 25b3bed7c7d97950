"""VERP: the envelope sender of each message names its outbox row, signed, so a bounce says whose mail it was.

With ``[bounces] return_path = "bounces@news.example.org"`` the envelope sender of outbox row 1234 is
``bounces+<tag>@news.example.org``. The tag is the row id as a base-32 numeral followed by 8 characters (40 bits)
of an HMAC-SHA256 of it under the secret key, in the alphabet ``a-z2-7``: short (12 characters for a million
rows), and unchanged by an MTA that lower-cases local parts (tags are compared lower-cased). Nobody without the
key can make a tag for a row, so nobody can bounce somebody else's subscription. Pure: no database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace
from email.utils import getaddresses

from feedsvc.config import Settings
from feedsvc.mail.transport import Envelope

__all__ = [
    "TagMatch",
    "envelope_sender",
    "find_tag",
    "make_tag",
    "message_id_part",
    "read_tag",
    "with_return_path",
]

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
MAC_CHARS = 8


def _numeral(value: int) -> str:
    digits = ""
    while True:
        value, digit = divmod(value, 32)
        digits = ALPHABET[digit] + digits
        if not value:
            return digits


def _mac(settings: Settings, numeral: str) -> str:
    key = hashlib.sha256(b"feedsvc.verp\0" + settings.secret_key.encode()).digest()
    digest = hmac.new(key, numeral.encode("ascii"), hashlib.sha256).digest()
    bits = int.from_bytes(digest[:5], "big")  # 40 bits: 8 characters
    return "".join(ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))


def make_tag(settings: Settings, outbox_id: int) -> str:
    """The signed tag naming outbox row `outbox_id`."""
    if outbox_id < 0:
        raise ValueError("outbox ids are not negative")
    numeral = _numeral(outbox_id)
    return numeral + _mac(settings, numeral)


def read_tag(settings: Settings, tag: str) -> int | None:
    """The outbox row a tag names, or None when it is not one we signed (compared case-insensitively)."""
    tag = tag.strip().lower()
    numeral, mac = tag[:-MAC_CHARS], tag[-MAC_CHARS:]
    if not numeral or len(numeral) > 13 or any(c not in ALPHABET for c in tag):
        return None
    if not hmac.compare_digest(_mac(settings, numeral), mac):
        return None
    value = 0
    for char in numeral:
        value = value * 32 + ALPHABET.index(char)
    return value if value < 2**63 else None


def message_id_part(settings: Settings, outbox_id: int) -> str:
    """The part of outbox row `outbox_id`'s Message-ID that names it: the id and 80 bits of an HMAC of it.

    A relay that rewrites the return path leaves only the Message-ID to match a report by; were it the bare row id,
    anyone who knows a reader's address could name their message in a forged report and unsubscribe them.
    """
    key = hashlib.sha256(b"feedsvc.message-id\0" + settings.secret_key.encode()).digest()
    mac = hmac.new(key, str(outbox_id).encode("ascii"), hashlib.sha256).hexdigest()[:20]
    return f"{outbox_id}-{mac}"


def envelope_sender(settings: Settings, outbox_id: int) -> str | None:
    """``<local>+<tag>@<domain>`` for the row, or None when no `[bounces] return_path` is configured."""
    return_path = settings.publication.return_path
    if not return_path:
        return None
    local, _, domain = return_path.rpartition("@")
    return f"{local}+{make_tag(settings, outbox_id)}@{domain}"


def with_return_path(settings: Settings, outbox_id: int, envelope: Envelope) -> Envelope:
    """`envelope` with the VERP sender of its row, or unchanged without `[bounces] return_path`."""
    sender = envelope_sender(settings, outbox_id)
    return replace(envelope, sender=sender) if sender else envelope


@dataclass(frozen=True)
class TagMatch:
    """A VERP address found in a report: the row it names, or None for a tag that is not ours (forged)."""

    address: str
    outbox_id: int | None


def find_tag(settings: Settings, values: Iterable[str]) -> TagMatch | None:
    """The first address among header `values` that is our return path with a tag; None if there is none."""
    return_path = settings.publication.return_path.lower()
    if not return_path:
        return None
    local, _, domain = return_path.rpartition("@")
    for _name, found in getaddresses([v for v in values if v]):
        found = found.strip().lower()
        found_local, _, found_domain = found.rpartition("@")
        base, plus, tag = found_local.partition("+")
        if found_domain == domain and base == local and plus:
            return TagMatch(found, read_tag(settings, tag))
    return None

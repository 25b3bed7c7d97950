"""Helpers for the DKIM tests: verify every signature of a message, read a signature's tags."""

from __future__ import annotations

import re
from collections.abc import Callable

import dkim as dkimpy

DnsFunc = Callable[..., bytes | None]


def signatures(data: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature header, top first."""
    message = dkimpy.DKIM(data)
    found = []
    for name, value in message.headers:
        if name.lower() == b"dkim-signature":
            text = re.sub(rb"\s+", b"", value).decode("ascii")
            found.append(dict(part.split("=", 1) for part in text.split(";") if part))
    return found


def verify_all(data: bytes, dnsfunc: DnsFunc) -> list[tuple[str, bool]]:
    """(algorithm, verified) for each DKIM-Signature, with dkimpy's verifier and `dnsfunc` for the keys."""
    message = dkimpy.DKIM(data)
    return [(sig["a"], _verifies(message, i, dnsfunc)) for i, sig in enumerate(signatures(data))]


def _verifies(message: dkimpy.DKIM, index: int, dnsfunc: DnsFunc) -> bool:
    try:
        return bool(message.verify(idx=index, dnsfunc=dnsfunc))
    except dkimpy.ValidationError:  # a body hash mismatch is raised, not returned
        return False


def replace_header(data: bytes, name: bytes, value: bytes) -> bytes:
    """`data` with the first `name:` header's value (folded lines included) replaced by `value`."""
    pattern = re.compile(rb"^(" + re.escape(name) + rb":)[^\r\n]*(\r\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)
    changed, count = pattern.subn(lambda m: m.group(1) + b" " + value, data, count=1)
    assert count == 1, f"no {name!r} header"
    return changed

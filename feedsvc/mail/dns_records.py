"""The DNS records a publication needs for its mail to be trusted (SPF, DKIM, DMARC), as zone-file lines,
and `check`, which looks them up (dnspython) and says what is missing or wrong.

The envelope (Return-Path) domain is a parameter: today it is the From domain; when bounces get a return
path of their own, its SPF and alignment are checked by passing its domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.exception
import dns.resolver

from feedsvc.config import Publication
from feedsvc.mail.dkim import Key

__all__ = ["Finding", "Record", "check", "records", "resolver", "txt_lookup", "zone_line"]

#: A TXT string is at most 255 bytes (RFC 1035); a 2048-bit key's record is longer and is split.
TXT_CHUNK = 255
#: Lookups: a name -> its TXT strings joined per record (an empty list: the name has no TXT record).
Lookup = Callable[[str], list[str]]


@dataclass(frozen=True)
class Record:
    """One record to publish: owner name, type, value, and what it is for."""

    name: str
    type: str
    value: str
    purpose: str
    kind: str  # spf, dkim, dmarc: how `check` compares it with what is published


@dataclass(frozen=True)
class Finding:
    """The outcome of checking one record: ok, or the problem."""

    record: Record
    ok: bool
    detail: str


def records(publication: Publication, keys: Sequence[Key], envelope_domain: str | None = None) -> list[Record]:
    """What to publish: SPF for the envelope domain, DKIM per key (selector), DMARC for the From domain."""
    from_domain = publication.from_address.rpartition("@")[2].lower()
    envelope = (envelope_domain or from_domain).lower()
    reports = publication.dmarc_reports or f"dmarc-reports@{from_domain}"
    rua = reports if reports.startswith("mailto:") else f"mailto:{reports}"
    return [
        Record(envelope, "TXT", "v=spf1 mx ~all", "SPF for the envelope domain: add your relay's include:", "spf"),
        *(
            Record(key.record_name(publication.dkim_domain), "TXT", key.txt, f"DKIM {key.algorithm}", "dkim")
            for key in keys
        ),
        Record(
            f"_dmarc.{from_domain}",
            "TXT",
            f"v=DMARC1; p=none; rua={rua}; adkim=r; aspf=r",
            "DMARC: monitor first (p=none), read the reports, then quarantine",
            "dmarc",
        ),
    ]


def zone_line(record: Record) -> str:
    """`record` as a zone-file line, long TXT values split into 255-byte strings."""
    chunks = [record.value[i : i + TXT_CHUNK] for i in range(0, len(record.value), TXT_CHUNK)] or [""]
    value = " ".join(f'"{chunk}"' for chunk in chunks)
    return f"{record.name}. 3600 IN {record.type} {value}"


def resolver(nameserver: str | None = None, port: int = 53, timeout: float = 5.0) -> Lookup:
    """A TXT lookup through the system's resolver, or straight to `nameserver` (an IP address) on `port`."""
    res = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver:
        res.nameservers = [nameserver]
        res.port = port
    res.lifetime = timeout

    def lookup(name: str) -> list[str]:
        return txt_lookup(res, name)

    return lookup


def txt_lookup(res: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT records at `name`, each record's strings joined; [] if there are none (NXDOMAIN, NODATA)."""
    try:
        answer = res.resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def check(
    publication: Publication, keys: Sequence[Key], lookup: Lookup, envelope_domain: str | None = None
) -> list[Finding]:
    """Look up every record of `records` and say, for each, whether what is published does the job."""
    findings = []
    for record in records(publication, keys, envelope_domain):
        try:
            published = lookup(record.name)
        except dns.exception.DNSException as exc:
            findings.append(Finding(record, False, f"lookup failed: {type(exc).__name__}: {exc}"))
            continue
        findings.append(_COMPARE[record.kind](record, published))
    return findings


def _spf(record: Record, published: list[str]) -> Finding:
    spf = [value for value in published if value.lower().startswith("v=spf1")]
    if not spf:
        return Finding(record, False, "missing: no v=spf1 record")
    if len(spf) > 1:
        return Finding(record, False, f"{len(spf)} SPF records: receivers treat that as an error (RFC 7208 §4.5)")
    if re.search(r"(^|\s)[+?]?all\b", spf[0]) and not re.search(r"(^|\s)[~-]all\b", spf[0]):
        return Finding(record, False, f"{spf[0]!r} lets any host send as this domain; end it with ~all or -all")
    return Finding(record, True, spf[0])


def _dkim(record: Record, published: list[str]) -> Finding:
    if not published:
        return Finding(record, False, "missing: the public key is not published")
    tags = _tags(published[0])
    wanted = _tags(record.value)
    if len(published) > 1:
        return Finding(record, False, f"{len(published)} TXT records: a selector has one key")
    if tags.get("p", "").replace(" ", "") != wanted["p"]:
        return Finding(record, False, "wrong: the published key is not the one messages are signed with")
    if tags.get("k", "rsa") != wanted["k"]:
        return Finding(record, False, f"wrong: k={tags.get('k', 'rsa')}, the key is k={wanted['k']}")
    return Finding(record, True, f"k={wanted['k']}, the key messages are signed with")


def _dmarc(record: Record, published: list[str]) -> Finding:
    dmarc = [value for value in published if value.replace(" ", "").lower().startswith("v=dmarc1")]
    if not dmarc:
        return Finding(record, False, "missing: no v=DMARC1 record")
    if len(dmarc) > 1:
        return Finding(record, False, f"{len(dmarc)} DMARC records: receivers ignore them all")
    tags = _tags(dmarc[0])
    if tags.get("p") not in ("none", "quarantine", "reject"):
        return Finding(record, False, f"{dmarc[0]!r} has no valid p= policy")
    if not tags.get("rua"):
        return Finding(record, False, f"{dmarc[0]!r} has no rua=: nobody receives the aggregate reports")
    return Finding(record, True, dmarc[0])


_COMPARE: dict[str, Callable[[Record, list[str]], Finding]] = {"spf": _spf, "dkim": _dkim, "dmarc": _dmarc}


def _tags(value: str) -> dict[str, str]:
    """A tag=value list (DKIM, DMARC) as a dict, names lower-cased."""
    pairs = (part.partition("=") for part in value.split(";") if "=" in part)
    return {name.strip().lower(): text.strip() for name, _, text in pairs}

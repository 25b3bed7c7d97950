"""DMARC relaxed alignment of the DKIM and envelope domains with the From domain (no dkimpy, no cryptography).

The worker checks this at start whether or not DKIM is on, so it lives apart from the signer; the Public
Suffix List is loaded only when two domains differ (equal domains are aligned without it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from feedsvc.config import Publication

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = ["aligned", "alignment_problems", "organisational_domain"]


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the list shipped in the package: no network


def _normal(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def organisational_domain(domain: str) -> str:
    """The registered domain under the Public Suffix List (``news.example.co.uk`` -> ``example.co.uk``)."""
    domain = _normal(domain)
    return _suffixes().privatesuffix(domain) or domain


def aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment (RFC 7489 §3.1): the two domains have the same organisational domain."""
    if _normal(domain) == _normal(from_domain):  # the same name has the same organisational domain
        return True
    return organisational_domain(domain) == organisational_domain(from_domain)


def alignment_problems(publication: Publication, envelope_domain: str | None = None) -> list[str]:
    """What stops DMARC from passing: the DKIM domain, and `envelope_domain` (the Return-Path's, for SPF)
    when given, each checked for relaxed alignment with the From domain."""
    from_domain = publication.from_address.rpartition("@")[2].lower()
    problems = []
    checks = [("DKIM", "[mail] dkim_domain", publication.dkim_domain)] if publication.dkim_domain else []
    if envelope_domain:
        checks.append(("SPF", "the envelope (Return-Path) domain", envelope_domain))
    for method, what, domain in checks:
        if not aligned(domain, from_domain):
            problems.append(
                f"{what} {domain} does not align with the From domain {from_domain} (DMARC relaxed alignment: "
                f"{organisational_domain(domain)} is not {organisational_domain(from_domain)}), so {method} "
                "cannot make DMARC pass"
            )
    return problems

"""Search tokens, the same for the index and the query on both databases: Latin words and CJK bigrams.

Chinese has no spaces, so a run of CJK characters becomes its overlapping two-character pieces (抖音快手 →
抖音 音快 快手) and a query's run becomes the phrase of its pieces, which matches exactly where the run
occurs. A single CJK character has no bigram; the query side searches the text for it instead. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RUN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")
#: A query longer than this is cut (a 5,000-character query must not cost more than a short one).
MAX_QUERY_CHARS = 200
MAX_TERMS = 16


def _runs(text: str) -> list[tuple[str, bool]]:
    """Each run of CJK characters or of other letters and digits, folded (NFKC, lower case), with is-CJK."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [(m.group(0), m.group(1) is not None) for m in _RUN.finditer(folded)]


def _pieces(run: str, cjk: bool) -> list[str]:
    if not cjk or len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def document_tokens(text: str) -> list[str]:
    """The tokens of `text` in order: each Latin word, each CJK bigram (a lone CJK character as itself)."""
    return [piece for run, cjk in _runs(text) for piece in _pieces(run, cjk)]


@dataclass(frozen=True)
class Term:
    """One query term: a phrase of tokens that must be adjacent, or a lone CJK character (`single`)."""

    tokens: tuple[str, ...]
    text: str  # the folded run, for highlighting

    @property
    def single(self) -> bool:
        """A one-character CJK term: no bigram holds it, so it is looked for in the text."""
        return len(self.text) == 1 and bool(re.fullmatch(f"[{_CJK}]", self.text))


def query_terms(query: str) -> list[Term]:
    """The terms of a query (all must match), at most MAX_TERMS, from its first MAX_QUERY_CHARS characters."""
    terms: list[Term] = []
    for run, cjk in _runs(query[:MAX_QUERY_CHARS]):
        term = Term(tuple(_pieces(run, cjk)), run)
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


def fts5_match(terms: list[Term]) -> str:
    """The FTS5 MATCH expression of `terms` (tokens hold only letters and digits: nothing to escape)."""
    return " AND ".join('"' + " ".join(t.tokens) + '"' for t in terms if not t.single)


def tsquery(terms: list[Term]) -> str:
    """The PostgreSQL tsquery text of `terms`: phrases (`<->`) joined by `&`."""
    return " & ".join("(" + " <-> ".join(f"'{token}'" for token in t.tokens) + ")" for t in terms if not t.single)


MAX_POSITION, MAX_POSITIONS = 16383, 256  # PostgreSQL's limits for a tsvector


def tsvector(tokens: list[str]) -> str:
    """The tsvector literal of `tokens` with their positions, so that phrase queries work on PostgreSQL."""
    positions: dict[str, list[int]] = {}
    for index, token in enumerate(tokens, start=1):
        found = positions.setdefault(token, [])
        if len(found) < MAX_POSITIONS:
            found.append(min(index, MAX_POSITION))
    return " ".join(f"'{token}':{','.join(map(str, sorted(set(p))))}" for token, p in positions.items())

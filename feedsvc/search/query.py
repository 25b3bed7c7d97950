"""Archive search queries: ranked (BM25 on SQLite, ts_rank on PostgreSQL), a section filter, pages.

A term of one CJK character has no bigram in the index; it is matched in the text (LIKE), alone or
beside the indexed terms. Every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy import text
from sqlalchemy.orm import Session

from feedsvc.search.snippets import SNIPPET_CHARS, highlight
from feedsvc.search.tokens import Term, fts5_match, query_terms, tsquery

PAGE_SIZE = 10


@dataclass(frozen=True)
class Hit:
    """One found item, its title and snippet highlighted (escaped HTML)."""

    issue_number: int
    issue_date: dt.date
    section: str
    item_key: str
    title: Markup
    snippet: Markup


@dataclass(frozen=True)
class Results:
    """One page of results, and how many there are in all."""

    query: str
    section: str
    page: int
    total: int
    hits: list[Hit]

    @property
    def pages(self) -> int:
        """The number of pages (at least 1)."""
        return max(1, -(-self.total // PAGE_SIZE))


def _like(term: Term) -> str:
    return "%" + term.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(terms: list[Term], section: str, sqlite: bool) -> tuple[str, str, dict[str, object]]:
    """The FROM clause, the WHERE clause and the parameters of a search, and the rank expression."""
    params: dict[str, object] = {}
    clauses = []
    indexed = [t for t in terms if not t.single]
    if indexed and sqlite:
        source = "search_fts JOIN search_entries e ON e.id = search_fts.rowid"
        clauses.append("search_fts MATCH :match")
        params["match"] = fts5_match(terms)
    elif indexed:
        source = "search_entries e"
        clauses.append("e.document @@ CAST(:match AS tsquery)")
        params["match"] = tsquery(terms)
    else:
        source = "search_entries e"
    for i, term in enumerate(t for t in terms if t.single):
        clauses.append(f"(e.title LIKE :like{i} ESCAPE '\\' OR e.body LIKE :like{i} ESCAPE '\\')")
        params[f"like{i}"] = _like(term)
    if section:
        clauses.append("e.section = :section")
        params["section"] = section
    return source, " AND ".join(clauses), params


def _order(terms: list[Term], sqlite: bool) -> str:
    """The ORDER BY terms: the rank when an index term is present, then the newest issue and item order."""
    rank = "bm25(search_fts), " if sqlite else "ts_rank(e.document, CAST(:match AS tsquery)) DESC, "
    return (rank if any(not t.single for t in terms) else "") + "e.issue_number DESC, e.position"


def search(session: Session, query: str, section: str = "", page: int = 1) -> Results:
    """Page `page` of the items matching every term of `query` (in `section`, if given), best first."""
    terms = query_terms(query)
    page = max(1, page)
    if not terms:
        return Results(query, section, page, 0, [])
    sqlite = session.get_bind().dialect.name == "sqlite"
    source, where, params = _where(terms, section, sqlite)
    total = session.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"), params).scalar_one()  # noqa: S608
    rows = session.execute(
        text(
            "SELECT e.issue_number, e.issue_date, e.section, e.item_key, e.title, e.body"  # noqa: S608
            f" FROM {source} WHERE {where}"
            f" ORDER BY {_order(terms, sqlite)} LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE},
    ).all()
    hits = [
        Hit(
            row.issue_number,
            row.issue_date if isinstance(row.issue_date, dt.date) else dt.date.fromisoformat(row.issue_date),
            row.section,
            row.item_key,
            highlight(row.title, terms),
            highlight(row.body, terms, SNIPPET_CHARS),
        )
        for row in rows
    ]
    return Results(query, section, page, total, hits)

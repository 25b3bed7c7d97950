"""The search index: one row per item of each issue the site holds, filled at publish and at build.

SQLite keeps the tokens in the FTS5 table `search_fts` (rowid = the entry's id); PostgreSQL in the GIN-indexed
tsvector column `document` (migration 0007). Both get the same tokens from feedsvc.search.tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.content.reader import issue_files, load_issues
from feedsvc.db.models import SearchEntry
from feedsvc.search.tokens import document_tokens, tsvector


def _remove(session: Session, numbers: Iterable[int]) -> None:
    for number in numbers:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(
                text("DELETE FROM search_fts WHERE rowid IN (SELECT id FROM search_entries WHERE issue_number = :n)"),
                {"n": number},
            )
        session.execute(text("DELETE FROM search_entries WHERE issue_number = :n"), {"n": number})


def _insert(session: Session, issue: Issue) -> None:
    sqlite = session.get_bind().dialect.name == "sqlite"
    for position, (section, item) in enumerate(issue.items):
        tokens = document_tokens(f"{item.title}\n{item.text}")
        values = {
            "n": issue.number,
            "d": issue.date,
            "p": position,
            "k": item.key,
            "s": section.slug,
            "t": item.title,
            "b": item.text,
            "tok": " ".join(tokens),
        }
        if sqlite:
            entry_id = session.execute(
                text(
                    "INSERT INTO search_entries (issue_number, issue_date, position, item_key, section, title, body,"
                    " tokens) VALUES (:n, :d, :p, :k, :s, :t, :b, :tok) RETURNING id"
                ),
                values,
            ).scalar_one()
            session.execute(
                text("INSERT INTO search_fts (rowid, tokens) VALUES (:id, :tok)"), {"id": entry_id, **values}
            )
        else:
            session.execute(
                text(
                    "INSERT INTO search_entries (issue_number, issue_date, position, item_key, section, title, body,"
                    " tokens, document) VALUES (:n, :d, :p, :k, :s, :t, :b, :tok, CAST(:doc AS tsvector))"
                ),
                {**values, "doc": tsvector(tokens)},
            )


def sync(session: Session, issues: Sequence[Issue], refresh: Iterable[int] = ()) -> int:
    """Make the index hold exactly `issues`: those in `refresh` and those not indexed yet are (re)indexed, the
    numbers no longer among them removed. Returns how many issues were (re)indexed. In the caller's transaction."""
    have = set(session.scalars(select(SearchEntry.issue_number).distinct()))
    wanted = {issue.number: issue for issue in issues}
    again = {n for n in refresh if n in wanted} | (wanted.keys() - have)
    _remove(session, (have - wanted.keys()) | (again & have))
    for number in sorted(again):
        _insert(session, wanted[number])
    return len(again)


def reindex(session: Session, issues: Sequence[Issue]) -> int:
    """Index every one of `issues` afresh (after a build: any of them may have been corrected)."""
    return sync(session, issues, refresh=[issue.number for issue in issues])


def reindex_folder(session: Session, issues_dir: Path, publication: Publication) -> int:
    """Index every issue in `issues_dir` afresh (what `feedsvc build` just built); how many there are."""
    return reindex(session, load_issues(issue_files(issues_dir), publication))

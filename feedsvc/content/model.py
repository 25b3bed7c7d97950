"""What an issue is once read: `Issue`, its `Section`s and `Item`s, and the reader's `ParseWarning`/`ParseError`.

Plain frozen data, shared by feeds, pages and mails; no parsing here (that is feedsvc.content.reader).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# The database keeps issue numbers in 32-bit integer columns (issues.number, outbox.issue_number in
# feedsvc/db/models.py); the reader refuses any number beyond, so that a publish cannot fail half-way.
MAX_ISSUE_NUMBER = 2**31 - 1


@dataclass(frozen=True)
class Item:
    """One news item: a heading and the paragraphs under it."""

    key: str
    title: str
    text: str
    html: str
    line: int = 0


@dataclass(frozen=True)
class Section:
    """A configured section as it appears in one issue."""

    name: str
    slug: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ParseWarning:
    """Something the reader accepted but the publisher should look at."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Issue:
    """One issue of the publication, ready for feeds, pages and emails."""

    number: int
    date: dt.date
    title: str
    publisher: str
    summary: tuple[str, ...]
    sections: tuple[Section, ...]
    colophon: tuple[str, ...] = ()
    warnings: tuple[ParseWarning, ...] = ()
    subject: str | None = None
    source: str = ""

    @property
    def items(self) -> Iterator[tuple[Section, Item]]:
        """Every item with its section, in issue order."""
        for section in self.sections:
            for item in section.items:
                yield section, item

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.sections)

    def only(self, slugs: Iterable[str]) -> Issue:
        """The same issue with just the sections whose slug is in `slugs` (issue order kept)."""
        wanted = set(slugs)
        return replace(self, sections=tuple(s for s in self.sections if s.slug in wanted))

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of `feedsvc check --json`."""
        return {
            "number": self.number,
            "date": self.date.isoformat(),
            "title": self.title,
            "publisher": self.publisher,
            "summary": list(self.summary),
            "sections": [
                {
                    "name": s.name,
                    "slug": s.slug,
                    "items": [{"key": i.key, "title": i.title, "text": i.text, "html": i.html} for i in s.items],
                }
                for s in self.sections
            ],
            "colophon": list(self.colophon),
            "warnings": [str(w) for w in self.warnings],
        }


class ParseError(Exception):
    """An issue file that cannot be published as it is; says which file and, where known, which line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path, self.message, self.line = str(path), message, line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")

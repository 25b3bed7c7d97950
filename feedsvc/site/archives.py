"""A feed's whole history as RFC 5005 documents: the subscription document and its archives. Pure.

Entries are counted from the oldest. The subscription document (``/feeds/<name>.atom``) holds the newest
`size` entries; the older ones fill archive pages of `size` entries each, the oldest first:
``/feeds/<name>/archive/1.atom`` holds entries 1…size, ``2.atom`` the next `size`, and so on. A full page
never gains or loses an entry, so its URL and its bytes stay the same for good (served with a long cache
lifetime). The newest page may hold fewer: its URL names how many, ``/feeds/<name>/archive/4-17.atom``, so
that a URL always stands for one set of entries (RFC 5005 §4: the set at an archive URL should not change)
and a reader that remembers which archives it has read never skips the entries a later build adds.

Each archive links ``prev-archive`` to the page before it and ``current`` to the subscription document;
``next-archive`` is left out (RFC 5005 says SHOULD): it would change a full page each time the page after
it moves on, and readers walk backwards anyway. JSON Feed gets the same pages, chained by ``next_url``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
PAGE_NAME = re.compile(r"[1-9][0-9]*(-[1-9][0-9]*)?")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One document of a feed: the subscription document (number 0) or an archive page."""

    name: str
    number: int
    entries: tuple[T, ...]  # newest first
    full: bool
    previous: str  # the stem (path without extension) of the page before, or ""

    @property
    def archive(self) -> bool:
        """Whether this is an archive document (fh:archive), not the subscription document."""
        return self.number > 0

    @property
    def stem(self) -> str:
        """The site path without its extension: ``/feeds/all`` or ``/feeds/all/archive/3`` (``…/4-17``)."""
        if not self.archive:
            return subscription_stem(self.name)
        suffix = "" if self.full else f"-{len(self.entries)}"
        return f"/feeds/{self.name}/archive/{self.number}{suffix}"

    def path(self, extension: str) -> str:
        """The site path of this page in a format: ``/feeds/all/archive/3.atom``."""
        return f"{self.stem}.{extension}"


def subscription_stem(name: str) -> str:
    """The site path of a feed's subscription document, without its extension."""
    return f"/feeds/{name}"


def paginate(name: str, entries: Sequence[T], size: int) -> tuple[Page[T], ...]:
    """Every document of the feed `name` whose `entries` are newest first: the archives, oldest first, then
    the subscription document (the newest `size` entries, linked to the newest archive)."""
    size = max(size, 1)
    oldest_first = list(reversed(entries))
    archived = oldest_first[: max(len(oldest_first) - size, 0)]
    pages: list[Page[T]] = []
    previous = ""
    for start in range(0, len(archived), size):
        chunk = archived[start : start + size]
        page = Page(name, start // size + 1, tuple(reversed(chunk)), len(chunk) == size, previous)
        pages.append(page)
        previous = page.stem
    pages.append(Page(name, 0, tuple(entries[:size]), False, previous))
    return tuple(pages)

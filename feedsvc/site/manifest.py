"""What the site remembers between builds, so that a correction is honest: ``manifest.json`` in the site. Pure.

For every entry ever published the manifest keeps a digest of what readers see (title and body, not the
site's address), its ``published`` and its ``updated``. The next build reads it back from the current
site: an entry whose digest is the same keeps both instants (an unchanged rebuild is byte-identical); an
entry whose text was corrected keeps its ``published`` and gets ``updated`` = the build's clock (later than
its previous ``updated``, and unlike any other entry's), so feed readers show the correction. The build
needs no database: the site carries its own memory, swapped in atomically with the files it describes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

MANIFEST = "manifest.json"
VERSION = 1
_SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Record:
    """What the manifest remembers of one entry."""

    digest: str
    published: dt.datetime
    updated: dt.datetime


History = Mapping[str, Record]


class Stamped(Protocol):
    """An entry as the manifest sees it (feeds.Entry)."""

    @property
    def id(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def published(self) -> dt.datetime: ...
    @property
    def updated(self) -> dt.datetime: ...


E = TypeVar("E", bound=Stamped)


def digest(*parts: str) -> str:
    """A short digest of what a reader sees of an entry."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(part.encode("utf-8") + b"\0")
    return hashed.hexdigest()[:20]


def load(data: bytes | None) -> dict[str, Record]:
    """The history in a previous build's manifest; empty without one (or with one this version cannot read)."""
    if not data:
        return {}
    try:
        document = json.loads(data)
        if document.get("version") != VERSION:
            return {}
        return {
            entry_id: Record(
                digest=str(raw["digest"]),
                published=dt.datetime.fromisoformat(raw["published"]),
                updated=dt.datetime.fromisoformat(raw["updated"]),
            )
            for entry_id, raw in document["entries"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def dump(entries: Iterable[Stamped]) -> bytes:
    """The manifest of a build: every entry's digest and instants, sorted by id (same entries, same bytes)."""
    records = {
        e.id: {"digest": e.digest, "published": e.published.isoformat(), "updated": e.updated.isoformat()}
        for e in entries
    }
    document = {"version": VERSION, "entries": dict(sorted(records.items()))}
    return (json.dumps(document, ensure_ascii=False, indent=0, sort_keys=False) + "\n").encode("utf-8")


def restamp(entries: Sequence[E], history: History, now: dt.datetime, zone: dt.tzinfo) -> list[E]:
    """`entries` with the instants the history gives them.

    Known and unchanged: the remembered `published` and `updated`. Known and corrected: the remembered
    `published`, and `updated` = `now` (in `zone`, whole seconds), moved on by a second at a time until it is
    later than the remembered one and no other entry has it. New: as built (their deterministic instants).
    """
    out: list[E] = []
    corrected: list[int] = []
    for entry in entries:
        known = history.get(entry.id)
        if known is None:
            out.append(entry)
        elif known.digest == entry.digest:
            out.append(replace(entry, published=known.published, updated=known.updated))  # type: ignore[type-var]
        else:
            corrected.append(len(out))
            out.append(replace(entry, published=known.published, updated=known.updated))  # type: ignore[type-var]
    taken = {e.updated for e in out}
    clock = now.astimezone(zone).replace(microsecond=0)
    for index in sorted(corrected, key=lambda i: out[i].id):
        updated = max(clock, out[index].updated + _SECOND)
        while updated in taken:
            updated += _SECOND
        taken.add(updated)
        out[index] = replace(out[index], updated=updated)  # type: ignore[type-var]
    return out

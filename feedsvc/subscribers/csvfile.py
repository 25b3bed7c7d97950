"""The subscriber CSV: read it for `feedsvc subscribers import` (bytes in, rows and line-numbered problems
out) and write it safely for `subscribers export`. Pure.

The file is the counterpart of `subscribers export`: a header row naming at least ``email``, optionally
``sections`` (slugs separated by ``;``, empty meaning every section) and ``status`` (as export writes it).
Every bad row is reported with its line number in the file and skipped; every good row is kept, so one
typo never costs the rest of the import. Rows an export marked ``unsubscribed`` or ``bounced`` are never
imported: re-importing an export must not bring back people who left.

Cells are written so that no spreadsheet runs them (OWASP "CSV injection"): a cell that starts with
``= + - @``, a tab or a carriage return (or with the escaping quote itself) gets a leading ``'``, which
spreadsheets take as "this is text"; the reader drops exactly that quote again, so an export round-trips.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from feedsvc.config import choose_sections

#: export statuses that may be imported; anything else is skipped with a note.
IMPORTABLE_STATUSES = frozenset({"", "active", "pending"})
#: a cell starting with one of these is a formula to a spreadsheet (or the escape itself): written as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
TEXT_MARK = "'"


def text_cell(value: str) -> str:
    """`value` as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    return TEXT_MARK + value if value.startswith(FORMULA_STARTS) else value


def cell_text(cell: str) -> str:
    """The value `text_cell` wrote: the leading text mark dropped again (any other cell as it is)."""
    return cell[1:] if cell.startswith(TEXT_MARK) and cell[1:].startswith(FORMULA_STARTS) else cell


class _TextCells:
    """A csv writer whose every cell goes through `text_cell`."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[str]) -> None:
        self._writer.writerow([text_cell(str(cell)) for cell in row])


def csv_writer(out: TextIO) -> _TextCells:
    """The one CSV writer of subscriber lists: cells formula-safe (see the module docstring)."""
    return _TextCells(out)


@dataclass(frozen=True)
class ImportRow:
    """One good row: the normalised address and its sections (empty tuple: every section)."""

    line: int
    email: str
    sections: tuple[str, ...]


@dataclass(frozen=True)
class RowProblem:
    """A row that was not imported, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class ParsedCsv:
    """The outcome of reading a subscriber CSV."""

    rows: tuple[ImportRow, ...]
    errors: tuple[RowProblem, ...]
    skipped: tuple[RowProblem, ...] = ()


def parse_sections(value: str, known: Iterable[str]) -> tuple[str, ...]:
    """`a; b` → ("a", "b") in configured order, duplicates dropped; empty → () (every section).

    Raises ValueError naming unknown slugs.
    """
    order = list(known)
    chosen, unknown = choose_sections(value, order)
    if unknown:
        raise ValueError(f"unknown section {', '.join(unknown)} (known: {', '.join(order)})")
    return chosen


def parse_csv(
    data: bytes,
    known_sections: Iterable[str],
    normalise: Callable[[str], str],
) -> ParsedCsv:
    """Parse a subscriber CSV (UTF-8, a BOM accepted); see the module docstring for the format.

    `normalise` is the one definition of an address (`addresses.normalise_email`): it returns the
    stored form or raises ValueError with the reason.
    """
    known = tuple(known_sections)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = ""
        try:
            data.decode("gb18030")
            hint = "; it looks like GB18030/GBK"
        except UnicodeDecodeError:
            pass
        return ParsedCsv((), (RowProblem(line, f"not UTF-8 text{hint} (save the file as UTF-8)"),))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return ParsedCsv((), (RowProblem(1, "the file is empty; expected a header row with 'email'"),))
    except csv.Error as exc:
        return ParsedCsv((), (RowProblem(1, f"unreadable header: {exc}"),))
    columns = [h.strip().lower() for h in header]
    if "email" not in columns:
        return ParsedCsv((), (RowProblem(1, f"the header row has no 'email' column (found: {', '.join(columns)})"),))
    at = {name: columns.index(name) for name in ("email", "sections", "status") if name in columns}

    rows: list[ImportRow] = []
    errors: list[RowProblem] = []
    skipped: list[RowProblem] = []
    first_seen: dict[str, int] = {}
    line = reader.line_num
    while True:
        start = line + 1  # a quoted field may span lines: report where the row starts
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowProblem(start, f"unreadable row: {exc}"))
            line = reader.line_num
            continue
        line = reader.line_num
        if not any(field.strip() for field in record):
            continue
        if len(record) > len(columns):
            errors.append(RowProblem(start, f"{len(record)} fields, the header has {len(columns)}"))
            continue

        def field(name: str, record: list[str] = record) -> str:
            index = at.get(name)
            return cell_text(record[index].strip()).strip() if index is not None and index < len(record) else ""

        raw = field("email")
        if not raw:
            errors.append(RowProblem(start, "no email address"))
            continue
        try:
            email = normalise(raw)
        except ValueError as exc:
            errors.append(RowProblem(start, f"{raw!r} is not a valid address: {exc}"))
            continue
        try:
            sections = parse_sections(field("sections"), known)
        except ValueError as exc:
            errors.append(RowProblem(start, f"{email}: {exc}"))
            continue
        status = field("status").lower()
        if status not in IMPORTABLE_STATUSES:
            skipped.append(RowProblem(start, f"{email}: status {status!r} is not imported"))
            continue
        key = email.lower()
        if key in first_seen:
            errors.append(RowProblem(start, f"{email} repeats line {first_seen[key]}"))
            continue
        first_seen[key] = start
        rows.append(ImportRow(start, email, sections))
    return ParsedCsv(tuple(rows), tuple(errors), tuple(skipped))

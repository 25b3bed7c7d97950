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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

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
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ParsedCsv((), (_not_utf8(data, exc),))
    reader = csv.reader(io.StringIO(text, newline=""))
    columns, problem = _header(reader)
    if problem is not None:
        return ParsedCsv((), (problem,))
    at = {name: columns.index(name) for name in ("email", "sections", "status") if name in columns}
    known = tuple(known_sections)
    rows: list[ImportRow] = []
    errors: list[RowProblem] = []
    skipped: list[RowProblem] = []
    first_seen: dict[str, int] = {}
    for start, record in _records(reader, len(columns), errors):
        fields = {name: _cell(record, index) for name, index in at.items()}
        row, problem, skip = _row(start, fields, known, normalise, first_seen)
        if row is not None:
            rows.append(row)
        elif problem is not None:
            (skipped if skip else errors).append(problem)
    return ParsedCsv(tuple(rows), tuple(errors), tuple(skipped))


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> RowProblem:
    """The problem of a file that is not UTF-8, naming GB18030/GBK when it decodes as that."""
    line = data[: exc.start].count(b"\n") + 1
    try:
        data.decode("gb18030")
        hint = "; it looks like GB18030/GBK"
    except UnicodeDecodeError:
        hint = ""
    return RowProblem(line, f"not UTF-8 text{hint} (save the file as UTF-8)")


def _header(reader: Iterator[list[str]]) -> tuple[list[str], RowProblem | None]:
    """The header's column names (lower case), or the problem that stops the import."""
    try:
        header = next(reader)
    except StopIteration:
        return [], RowProblem(1, "the file is empty; expected a header row with 'email'")
    except csv.Error as exc:
        return [], RowProblem(1, f"unreadable header: {exc}")
    columns = [h.strip().lower() for h in header]
    if "email" not in columns:
        return columns, RowProblem(1, f"the header row has no 'email' column (found: {', '.join(columns)})")
    return columns, None


def _records(reader: Any, width: int, errors: list[RowProblem]) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, fields) for each non-blank row; unreadable and too-wide rows go to `errors`."""
    line = reader.line_num
    while True:
        start = line + 1  # a quoted field may span lines: report where the row starts
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowProblem(start, f"unreadable row: {exc}"))
            line = reader.line_num
            continue
        line = reader.line_num
        if not any(field.strip() for field in record):
            continue
        if len(record) > width:
            errors.append(RowProblem(start, f"{len(record)} fields, the header has {width}"))
            continue
        yield start, record


def _cell(record: list[str], index: int) -> str:
    """The text of one cell (formula mark removed), or "" when the row is shorter."""
    return cell_text(record[index].strip()).strip() if index < len(record) else ""


def _row(
    start: int,
    fields: dict[str, str],
    known: tuple[str, ...],
    normalise: Callable[[str], str],
    first_seen: dict[str, int],
) -> tuple[ImportRow | None, RowProblem | None, bool]:
    """One row read: (the row to import, None, False), or (None, its problem, whether it is a skip)."""
    raw = fields.get("email", "")
    if not raw:
        return None, RowProblem(start, "no email address"), False
    try:
        email = normalise(raw)
    except ValueError as exc:
        return None, RowProblem(start, f"{raw!r} is not a valid address: {exc}"), False
    try:
        sections = parse_sections(fields.get("sections", ""), known)
    except ValueError as exc:
        return None, RowProblem(start, f"{email}: {exc}"), False
    status = fields.get("status", "").lower()
    if status not in IMPORTABLE_STATUSES:
        return None, RowProblem(start, f"{email}: status {status!r} is not imported"), True
    key = email.lower()
    if key in first_seen:
        return None, RowProblem(start, f"{email} repeats line {first_seen[key]}"), False
    first_seen[key] = start
    return ImportRow(start, email, sections), None, False

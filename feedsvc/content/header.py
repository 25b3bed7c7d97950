"""An issue's identity: title and publisher from its header; number, date and subject from the front matter,
the header (第 N 期, YYYY 年 M 月 D 日) or the file name (YYYY-MM-DD-N.md), in that order."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from feedsvc.content.blocks import Block, Reading
from feedsvc.content.frontmatter import (
    DATE_CN,
    DATE_ISO,
    TOO_LARGE,
    FrontMatter,
    front_date,
    front_number,
    front_subject,
    real_date,
    whole_number,
)
from feedsvc.content.model import MAX_ISSUE_NUMBER
from feedsvc.content.text import clip, inline_text

_NUMBER = re.compile(r"第\s*(\d+)\s*期")
_FILENAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d+)")

Found = tuple[int, int]  # a number and the line it was found on (0: not a line of the file)


@dataclass(frozen=True)
class Header:
    """What the blocks before the first ``##`` say; number and date with the line they stand on."""

    title: str
    publisher: str
    number: Found | None
    date: tuple[dt.date, int] | None


def read_header(blocks: list[Block], reading: Reading) -> Header:
    """Title, publisher, number and date from the blocks before the first ``##``.

    Number (第 N 期) and date (YYYY 年 M 月 D 日) are found wherever they stand, one line or two,
    in the title or not; the first other paragraph is the publisher.
    """
    title = publisher = ""
    number: Found | None = None
    date: tuple[dt.date, int] | None = None
    for block in blocks:
        if block.kind == "hr":
            continue
        text = inline_text(block.content) if block.content else block.source.strip()
        rest = text
        if number is None and (m := _NUMBER.search(text)):
            number = (whole_number(m.group(1)), block.line)
            rest = rest.replace(m.group(0), " ")
        if date is None and (m := DATE_CN.search(text) or DATE_ISO.match(text)):
            date = (real_date(m.groups(), block.line, reading), block.line)
            rest = rest.replace(m.group(0), " ")
        rest = " ".join(rest.split())
        if block.kind == "heading" and not title:
            title = rest
        elif not rest:
            continue
        elif block.kind == "paragraph" and not publisher:
            publisher = rest
        else:
            reading.warn(block.line, f"header text {clip(text)!r} is not used")
    return Header(title, publisher, number, date)


def identity(header: Header, front: FrontMatter, reading: Reading) -> tuple[int, dt.date, str | None]:
    """Number, date and subject: front matter, else the header, else the file name."""
    from_name = _FILENAME.search(Path(reading.source).name)
    number, date = header.number, header.date
    in_front = front_number(front, reading)
    if in_front is not None:
        number = (in_front, front.line("number"))
    dated = front_date(front, reading)
    if dated is not None:
        date = (dated, 0)
    if number is None and from_name:
        number = (whole_number(from_name.group(4)), 0)
    if date is None and from_name:
        date = (real_date(from_name.groups()[:3], 0, reading), 0)
    if number is None:
        raise reading.error(
            "has no issue number: write 第 N 期 in the header, number: in front matter, "
            "or name the file YYYY-MM-DD-N.md"
        )
    if date is None:
        raise reading.error(
            "has no date: write YYYY 年 M 月 D 日 in the header, date: in front matter, "
            "or name the file YYYY-MM-DD-N.md"
        )
    _check_range(number, reading)
    if from_name and in_front is None and whole_number(from_name.group(4)) != number[0]:
        reading.warn(number[1], f"the header says issue {number[0]} but the file name says {from_name.group(4)}")
    named_date = "-".join(from_name.groups()[:3]) if from_name else ""
    if named_date and dated is None and named_date != date[0].isoformat():
        reading.warn(date[1], f"the header says {date[0].isoformat()} but the file name says {named_date}")
    return number[0], date[0], front_subject(front, reading)


def _check_range(number: Found, reading: Reading) -> None:
    """An issue number is positive and fits the database's 32-bit column."""
    value, line = number
    if value <= 0:
        raise reading.error(f"issue number {value} must be positive", line or None)
    if value > MAX_ISSUE_NUMBER:
        shown = f"{value} " if value < TOO_LARGE else ""
        raise reading.error(f"issue number {shown}is too large (at most {MAX_ISSUE_NUMBER})", line or None)

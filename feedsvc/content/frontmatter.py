"""YAML front matter of an issue file: split off (line numbers kept) and read into typed values.

Only ``number``, ``date`` and ``subject`` are used. A value YAML or the database cannot hold (an unreal date,
a number beyond 32 bits, a list where text belongs) is a `ParseError` naming the file and the line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from feedsvc.content.blocks import Reading

FRONT_KEYS = ("date", "number", "subject")
DATE_CN = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
DATE_ISO = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")
TOO_LARGE = 10**18  # stands for any number of more than 18 digits (int() of 5,000 digits refuses)
_KEY_LINE = re.compile(r"\s*([^\s:#][^:]*?)\s*:")


@dataclass(frozen=True)
class FrontMatter:
    """The front matter's values and the file line of each top-level key."""

    values: dict[Any, Any]
    lines: dict[str, int]

    def line(self, key: str) -> int:
        """The line `key` is written on (2, the first line inside ``---``, if it cannot be told)."""
        return self.lines.get(key, 2)


class _BadValue(Exception):
    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.node, self.reason = node, reason


class _Loader(yaml.SafeLoader):
    """SafeLoader whose unreadable scalars (2024-02-30, an int of 5,000 digits) carry their line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise _BadValue(node, str(exc)) from None


def split_front_matter(text: str, reading: Reading) -> tuple[str, FrontMatter]:
    """Split off YAML front matter, keeping line numbers (its lines become blank)."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return text, FrontMatter({}, {})
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")), None)
    if end is None:
        raise reading.error("front matter opened with --- is never closed", 1)
    try:
        values = yaml.load("\n".join(lines[1:end]), Loader=_Loader) or {}  # noqa: S506 (a SafeLoader)
    except _BadValue as exc:
        value = _clip_scalar(exc.node)
        line = exc.node.start_mark.line + 2
        raise reading.error(f"front matter value {value} cannot be read: {exc.reason}", line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise reading.error(f"front matter is not valid YAML: {problem}", line) from None
    if not isinstance(values, dict):
        raise reading.error("front matter must be key: value pairs", 2)
    for key in sorted(set(map(str, values)) - set(FRONT_KEYS)):
        reading.warn(1, f"front matter key {key!r} is not used (known: {', '.join(FRONT_KEYS)})")
    return "\n" * end + "\n" + "\n".join(lines[end + 1 :]), FrontMatter(values, _key_lines(lines[1:end]))


def front_number(front: FrontMatter, reading: Reading) -> int | None:
    """The ``number:`` of the front matter as an int, if there is one (range checks are the caller's)."""
    value = front.values.get("number")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return whole_number(value.strip())
    raise reading.error(f"front matter number {_show(value)} is not a whole number", front.line("number"))


def front_date(front: FrontMatter, reading: Reading) -> dt.date | None:
    """The ``date:`` of the front matter, if there is one: YYYY-MM-DD (or YYYY 年 M 月 D 日)."""
    value = front.values.get("date")
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    line = front.line("date")
    match = (DATE_ISO.match(value) or DATE_CN.search(value)) if isinstance(value, str) else None
    if not match:
        raise reading.error(f"front matter date {_show(value)} is not YYYY-MM-DD", line)
    return real_date(match.groups(), line, reading)


def front_subject(front: FrontMatter, reading: Reading) -> str | None:
    """The ``subject:`` on one line (it becomes a mail header), or None when absent or blank."""
    subject = front.values.get("subject")
    if subject is None:
        return None
    if not isinstance(subject, str):
        raise reading.error("front matter subject must be text", front.line("subject"))
    return " ".join(subject.split()) or None


def whole_number(digits: str) -> int:
    """The int of a run of digits; one too long for any issue number is just "too large" (10**18)."""
    return int(digits) if len(digits) <= 18 else TOO_LARGE


def real_date(parts: Sequence[str], line: int, reading: Reading) -> dt.date:
    """The date of (year, month, day) digits, or a refusal when the calendar has no such day."""
    year, month, day = (int(p) for p in parts)
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise reading.error(f"{year} 年 {month} 月 {day} 日 is not a real date", line or None) from None


def _key_lines(lines: Sequence[str]) -> dict[str, int]:
    """The file line of each top-level key (front matter starts on line 2)."""
    found: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _KEY_LINE.match(line) if line[:1] not in (" ", "\t") else None
        if match:
            found.setdefault(match.group(1).strip("'\""), index + 2)
    return found


def _show(value: object) -> str:
    """A value for a message: the repr of a short scalar, else just its type (a list may be huge)."""
    if isinstance(value, str | int | float | bool | dt.date):
        text = repr(value) if not isinstance(value, int) or value < TOO_LARGE else "(a very long number)"
        return text if len(text) <= 60 else text[:59] + "…"
    return f"of type {type(value).__name__}"


def _clip_scalar(node: yaml.Node) -> str:
    value = node.value if isinstance(node.value, str) else node.tag
    return repr(value if len(value) <= 60 else value[:59] + "…")

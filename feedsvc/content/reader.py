"""Read newsletter issues, exactly as they arrive, into `Issue`s. Pure: no Flask, no database.

Issues come from PDF conversion, so the reader is forgiving about form and strict about meaning:

* the header (``# title``, publisher, ``第 N 期``, ``YYYY 年 M 月 D 日``) gives number and date,
  optional YAML front matter overrides number, date and subject (content/header.py, content/frontmatter.py);
* a level-2 heading naming a configured section (``## 行业``, ``## **研究**``) opens a section;
* any other heading written ``###``, ``### **…**`` or ``## **…**`` opens an item; ``{#key}`` at its end
  pins the item's key (content/body.py, content/items.py);
* the list under the summary heading (``## 摘要：``) is the summary, ``◆`` bullets removed;
* paragraphs split at a page break (no closing punctuation, then a blank line) are joined again;
* the trailing run of paragraphs starting with a colophon marker (``**编辑部：**`` …) is the colophon.

Raw HTML is escaped, links are limited to http(s) and mailto, remote images follow the publication's
policy, and characters XML forbids are dropped. Every refusal is a `ParseError` naming the file and,
where it applies, the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from feedsvc.config import Publication
from feedsvc.content.blocks import Reading, drop_forbidden, split_blocks
from feedsvc.content.body import assemble, names_section, split_colophon
from feedsvc.content.frontmatter import split_front_matter
from feedsvc.content.header import identity, read_header
from feedsvc.content.items import derive_key, finish_sections
from feedsvc.content.model import Issue, ParseError

__all__ = [
    "derive_key",
    "issue_files",
    "load_issues",
    "parse",
    "parse_bytes",
    "parse_text",
    "read_issues",
]


def parse(path: str | Path, publication: Publication) -> Issue:
    """Read the issue file at `path`; raise `ParseError` if it cannot be published."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(path, f"cannot read: {exc.strerror or exc}") from exc
    return parse_bytes(data, publication, source=str(path))


def parse_bytes(data: bytes, publication: Publication, source: str = "<issue>") -> Issue:
    """Decode `data` as UTF-8 (a BOM is accepted) and parse it."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = ""
        try:
            data.decode("gb18030")
            hint = " It looks like GB18030/GBK: save it as UTF-8 (iconv -f GB18030 -t UTF-8)."
        except UnicodeDecodeError:
            pass
        raise ParseError(
            source, f"is not UTF-8 (byte 0x{data[exc.start]:02X} at offset {exc.start}).{hint}", line
        ) from None
    return parse_text(text, publication, source=source)


def parse_text(text: str, publication: Publication, source: str = "<issue>") -> Issue:
    """Parse an issue already decoded to text."""
    reading = Reading(source, publication)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise reading.error("is empty")
    text, front = split_front_matter(text, reading)
    blocks = split_blocks(drop_forbidden(text, reading).split("\n"))
    if not blocks:
        raise reading.error("has no content")
    body_start = next((i for i, b in enumerate(blocks) if b.kind == "heading" and b.level >= 2), len(blocks))
    rest, colophon = split_colophon(blocks[body_start:], publication.colophon_markers)
    header = read_header(blocks[:body_start], reading)
    names = "、".join(s.name for s in publication.sections)
    if not any(names_section(b, reading) for b in rest):
        raise reading.error(f"has no configured section heading (write ## and one of: {names})")
    summary, drafts = assemble(rest, reading)
    if not any(s.items for s in drafts):
        raise reading.error(f"has no item under a configured section (sections are: {names})")
    number, date, subject = identity(header, front, reading)
    return Issue(
        number=number,
        date=date,
        title=header.title or publication.name,
        publisher=header.publisher or publication.publisher,
        summary=tuple(summary),
        sections=finish_sections(drafts, reading),
        colophon=tuple(colophon),
        warnings=tuple(reading.warnings),
        subject=subject,
        source=source,
    )


def read_issues(
    sources: Iterable[str | Path | Issue], publication: Publication
) -> tuple[list[Issue], list[ParseError]]:
    """Parse every file of `sources` in order (an `Issue` already read is taken as it is): the issues and the
    refusals, one per file that failed.

    The one rule for numbers across files: a number a file before already used is a refusal naming both.
    """
    seen: dict[int, str] = {}
    issues: list[Issue] = []
    errors: list[ParseError] = []
    for source in sources:
        try:
            issue = source if isinstance(source, Issue) else parse(source, publication)
        except ParseError as exc:
            errors.append(exc)
            continue
        if issue.number in seen:
            errors.append(
                ParseError(issue.source, f"issue number {issue.number} is already used by {seen[issue.number]}")
            )
            continue
        seen[issue.number] = issue.source
        issues.append(issue)
    return issues, errors


def load_issues(sources: Iterable[str | Path | Issue], publication: Publication) -> list[Issue]:
    """Parse several issue files, newest first; the first refusal (a broken file, a number used twice) is raised."""
    issues, errors = read_issues(sources, publication)
    if errors:
        raise errors[0]
    return newest_first(issues)


def newest_first(issues: Iterable[Issue]) -> list[Issue]:
    """Issues by date then number, the latest first (the order of the archive and the feeds)."""
    return sorted(issues, key=lambda i: (i.date, i.number), reverse=True)


def issue_files(folder: str | Path) -> list[Path]:
    """The issue files in a folder: every *.md, in name order (hidden files and README left out)."""
    return sorted(p for p in Path(folder).glob("*.md") if not p.name.startswith(".") and p.name.lower() != "readme.md")

"""Read one newsletter issue, exactly as it arrives, into an `Issue`. Pure: no Flask, no database.

Issues come from PDF conversion, so the reader is forgiving about form and strict about meaning:

* the header (``# title``, publisher, ``第 N 期``, ``YYYY 年 M 月 D 日``) gives number and date,
  optional YAML front matter overrides number, date and subject;
* a level-2 heading naming a configured section (``## 行业``, ``## **研究**``) opens a section;
* any other heading written ``###``, ``### **…**`` or ``## **…**`` opens an item; ``{#key}`` at its end
  pins the item's key;
* the list under the summary heading (``## 摘要：``) is the summary, ``◆`` bullets removed;
* paragraphs split at a page break (no closing punctuation, then a blank line) are joined again;
* the trailing run of paragraphs starting with a colophon marker (``**编辑部：**`` …) is the colophon.

Raw HTML is escaped, links are limited to http(s) and mailto, and characters XML forbids are dropped.
Every refusal is a `ParseError` naming the file and, where it applies, the line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from markdown_it.token import Token

from feedsvc.config import Publication
from feedsvc.content.markdown import is_cjk, make_markdown

# ---------------------------------------------------------------------------------------------- model


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


# ------------------------------------------------------------------------------------------ markdown

# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, DEL is allowed but useless, and the two
# non-characters U+FFFE/U+FFFF). Feeds with them are not well-formed, so they go before anything else.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")

MARKDOWN = make_markdown()
# The first pass only needs block structure and line numbers: no inline parsing of the whole file.
STRUCTURE = make_markdown().disable(["inline", "linkify", "text_join"])

# ---------------------------------------------------------------------------------------- the reader

_TERMINAL = set("。！？!?…；;：:.")
_CLOSERS = set("”’\"'」』）)》〉】]")
_BULLETS = "◆◇●○•■□▪▫►▶★☆·-–—"
_KEY_SUFFIX = re.compile(r"\s*\{#([^{}]*)\}\s*$")
_KEY_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_NUMBER = re.compile(r"第\s*(\d+)\s*期")
_DATE_CN = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_DATE_ISO = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")
_FILENAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d+)")
_FRONT_KEYS = {"number", "date", "subject"}


@dataclass
class _Block:
    """A top-level Markdown block with its 1-based first line and its source."""

    kind: str  # heading, paragraph, hr or other (lists, quotes, code, tables)
    line: int
    source: str
    level: int = 0
    content: str = ""  # the inline Markdown of a heading or paragraph


@dataclass
class _Draft:
    title: str
    line: int
    explicit_key: str | None
    body: list[_Block] = field(default_factory=list)
    section_like: bool = False  # a plain ## heading that is not a configured section


@dataclass
class _SectionDraft:
    name: str
    slug: str
    line: int
    items: list[_Draft] = field(default_factory=list)


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
    return _Reader(text, publication, source).read()


class _Reader:
    """One pass over one issue; collects warnings on the way."""

    def __init__(self, text: str, publication: Publication, source: str) -> None:
        self.pub = publication
        self.source = source
        self.warnings: list[ParseWarning] = []
        text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        if not text.strip():
            raise ParseError(source, "is empty")
        text, self.front = self._front_matter(text)
        self.lines = self._drop_forbidden(text).split("\n")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(ParseWarning(line, message))

    # -- whole-file steps

    def _front_matter(self, text: str) -> tuple[str, dict[str, Any]]:
        """Split off YAML front matter, keeping line numbers (its lines become blank)."""
        lines = text.split("\n")
        if lines[0].strip() != "---":
            return text, {}
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")), None)
        if end is None:
            raise ParseError(self.source, "front matter opened with --- is never closed", 1)
        try:
            front = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark else 1
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ParseError(self.source, f"front matter is not valid YAML: {problem}", line) from None
        if not isinstance(front, dict):
            raise ParseError(self.source, "front matter must be key: value pairs", 2)
        for key in sorted(set(map(str, front)) - _FRONT_KEYS):
            self.warn(1, f"front matter key {key!r} is not used (known: date, number, subject)")
        return "\n" * end + "\n" + "\n".join(lines[end + 1 :]), front

    def _drop_forbidden(self, text: str) -> str:
        if not _FORBIDDEN.search(text):
            return text
        out = []
        for number, line in enumerate(text.split("\n"), 1):
            cleaned, count = _FORBIDDEN.subn("", line)
            if count:
                self.warn(number, f"removed {count} control character(s) that feeds cannot carry")
            out.append(cleaned)
        return "\n".join(out)

    def _blocks(self) -> list[_Block]:
        tokens = STRUCTURE.parse("\n".join(self.lines))
        blocks: list[_Block] = []
        for index, token in enumerate(tokens):
            if token.level != 0 or token.nesting == -1 or token.map is None:
                continue
            start, end = token.map
            source = "\n".join(self.lines[start:end])
            if token.type == "heading_open":
                inline = tokens[index + 1].content
                blocks.append(_Block("heading", start + 1, source, int(token.tag[1]), inline))
            elif token.type == "paragraph_open":
                blocks.append(_Block("paragraph", start + 1, source, content=tokens[index + 1].content))
            elif token.type == "hr":
                blocks.append(_Block("hr", start + 1, source))
            else:
                blocks.append(_Block("other", start + 1, source))
        return blocks

    # -- the structure

    def read(self) -> Issue:
        blocks = self._blocks()
        if not blocks:
            raise ParseError(self.source, "has no content")
        body_start = next((i for i, b in enumerate(blocks) if b.kind == "heading" and b.level >= 2), None)
        header = blocks[:body_start] if body_start is not None else blocks
        rest = blocks[body_start:] if body_start is not None else []
        rest, colophon = self._split_colophon(rest)
        title, publisher, number, date = self._header(header)
        if not any(self._section_of(b) for b in rest):
            names = "、".join(s.name for s in self.pub.sections)
            raise ParseError(self.source, f"has no configured section heading (write ## and one of: {names})")
        summary, sections = self._body(rest)
        if not any(s.items for s in sections):
            names = "、".join(s.name for s in self.pub.sections)
            raise ParseError(self.source, f"has no item under a configured section (sections are: {names})", None)
        number, date, subject = self._identity(number, date)
        return Issue(
            number=number,
            date=date,
            title=title or self.pub.name,
            publisher=publisher or self.pub.publisher,
            summary=tuple(summary),
            sections=self._finish_sections(sections),
            colophon=tuple(colophon),
            warnings=tuple(self.warnings),
            subject=subject,
            source=self.source,
        )

    def _section_of(self, block: _Block) -> bool:
        """True when `block` is a heading that names a configured section."""
        if block.kind != "heading" or block.level > 2:
            return False
        return self.pub.section_by_name(_inline_text(block.content).rstrip("：:").strip()) is not None

    def _split_colophon(self, blocks: list[_Block]) -> tuple[list[_Block], list[str]]:
        """The trailing run of marker paragraphs (and rules between them) is the colophon."""
        markers = self.pub.colophon_markers
        start = len(blocks)
        for i in range(len(blocks) - 1, -1, -1):
            block = blocks[i]
            if block.kind == "hr":
                continue
            if block.kind == "paragraph" and _starts_with_marker(_inline_text(block.content), markers):
                start = i
                continue
            break
        while start < len(blocks) and blocks[start].kind == "hr":
            start += 1
        colophon = [_inline_text(b.content) for b in blocks[start:] if b.kind == "paragraph"]
        return blocks[:start], colophon

    def _header(self, blocks: list[_Block]) -> tuple[str, str, tuple[int, int] | None, tuple[dt.date, int] | None]:
        """Title, publisher, number and date from the blocks before the first ``##``.

        Number (第 N 期) and date (YYYY 年 M 月 D 日) are found wherever they stand, one line or two,
        in the title or not; the first other paragraph is the publisher.
        """
        title = publisher = ""
        number: tuple[int, int] | None = None
        date: tuple[dt.date, int] | None = None
        for block in blocks:
            if block.kind == "hr":
                continue
            text = _inline_text(block.content) if block.content else block.source.strip()
            rest = text
            if number is None and (m := _NUMBER.search(text)):
                number = (int(m.group(1)), block.line)
                rest = rest.replace(m.group(0), " ")
            if date is None and (m := _DATE_CN.search(text) or _DATE_ISO.match(text)):
                date = (self._date(m.groups(), block.line), block.line)
                rest = rest.replace(m.group(0), " ")
            rest = " ".join(rest.split())
            if block.kind == "heading" and not title:
                title = rest
            elif not rest:
                continue
            elif block.kind == "paragraph" and not publisher:
                publisher = rest
            else:
                self.warn(block.line, f"header text {_clip(text)!r} is not used")
        return title, publisher, number, date

    def _date(self, parts: Sequence[str], line: int) -> dt.date:
        year, month, day = (int(p) for p in parts)
        try:
            return dt.date(year, month, day)
        except ValueError:
            raise ParseError(self.source, f"{year} 年 {month} 月 {day} 日 is not a real date", line) from None

    def _body(self, blocks: list[_Block]) -> tuple[list[str], list[_SectionDraft]]:
        summary: list[str] = []
        sections: list[_SectionDraft] = []
        by_slug: dict[str, _SectionDraft] = {}
        current: _SectionDraft | None = None
        item: _Draft | None = None
        in_summary = False
        for block in blocks:
            if block.kind == "heading":
                content, key = self._split_key(block)
                name = _inline_text(content)
                bare = name.rstrip("：:").strip()
                bold = _is_bold(content)
                configured = self.pub.section_by_name(bare)
                in_summary = False
                if block.level <= 2 and bare == self.pub.summary_heading:
                    in_summary, item = True, None
                    continue
                if block.level <= 2 and configured:
                    if key:
                        self.warn(block.line, f"{{#{key}}} on a section heading is ignored")
                    if configured.slug in by_slug:
                        self.warn(block.line, f"section {bare} appears again; its items join the first one")
                        current = by_slug[configured.slug]
                    else:
                        current = _SectionDraft(configured.name, configured.slug, block.line)
                        by_slug[configured.slug] = current
                        sections.append(current)
                    item = None
                    continue
                if block.level >= 4 and item is not None:
                    item.body.append(block)
                    continue
                if current is None:
                    raise ParseError(self.source, f"item {_clip(name)!r} comes before any section heading", block.line)
                if not name:
                    raise ParseError(self.source, "an item heading has no title", block.line)
                item = _Draft(name, block.line, key, section_like=block.level <= 2 and not bold)
                current.items.append(item)
            elif in_summary:
                summary.extend(self._summary_lines(block))
            elif block.kind == "hr":
                continue
            elif item is not None:
                item.body.append(block)
            else:
                where = f"section {current.name}" if current else "the summary"
                self.warn(
                    block.line,
                    f"text {_clip(_block_text(block))!r} after {where} belongs to no item and is left out; "
                    "give it a heading",
                )
        for section in sections:
            if not section.items:
                self.warn(section.line, f"section {section.name} has no items")
        return summary, sections

    def _split_key(self, block: _Block) -> tuple[str, str | None]:
        """Remove a trailing ``{#key}`` (also inside closing ``**``) from a heading."""
        content = block.content.strip()
        closing = ""
        for marker in ("**", "__"):
            if content.endswith(marker) and _KEY_SUFFIX.search(content[: -len(marker)]):
                content, closing = content[: -len(marker)], marker
        match = _KEY_SUFFIX.search(content)
        if not match:
            return content + closing, None
        key = match.group(1).strip()
        if not _KEY_SHAPE.fullmatch(key):
            raise ParseError(
                self.source,
                f"item key {{#{key}}} must be 1-64 ASCII letters, digits, '-' or '_', starting with a letter or digit",
                block.line,
            )
        return content[: match.start()].rstrip() + closing, key

    def _summary_lines(self, block: _Block) -> list[str]:
        if block.kind == "hr":
            return []
        lines = []
        for raw in block.source.split("\n"):
            text = raw.strip()
            text = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", text)
            text = _inline_text(text).lstrip(_BULLETS).strip()
            if text:
                lines.append(text)
        return lines

    def _identity(
        self, number: tuple[int, int] | None, date: tuple[dt.date, int] | None
    ) -> tuple[int, dt.date, str | None]:
        """Number and date: front matter, else the header, else the file name."""
        name = Path(self.source).name
        from_name = _FILENAME.search(name)
        front_number = self.front.get("number")
        if front_number is not None:
            if isinstance(front_number, bool) or not str(front_number).strip().isdigit():
                raise ParseError(self.source, f"front matter number {front_number!r} is not a whole number", 2)
            number = (int(str(front_number).strip()), 0)
        front_date = self.front.get("date")
        if front_date is not None:
            date = (self._front_date(front_date), 0)
        if number is None and from_name:
            number = (int(from_name.group(4)), 0)
        if date is None and from_name:
            date = (self._date(from_name.groups()[:3], 0), 0)
        if number is None:
            raise ParseError(
                self.source,
                "has no issue number: write 第 N 期 in the header, number: in front matter, "
                "or name the file YYYY-MM-DD-N.md",
            )
        if date is None:
            raise ParseError(
                self.source,
                "has no date: write YYYY 年 M 月 D 日 in the header, date: in front matter, "
                "or name the file YYYY-MM-DD-N.md",
            )
        if number[0] <= 0:
            raise ParseError(self.source, f"issue number {number[0]} must be positive", number[1] or None)
        if from_name and front_number is None and int(from_name.group(4)) != number[0]:
            self.warn(number[1], f"the header says issue {number[0]} but the file name says {from_name.group(4)}")
        named_date = "-".join(from_name.groups()[:3]) if from_name else ""
        if named_date and front_date is None and named_date != date[0].isoformat():
            self.warn(date[1], f"the header says {date[0].isoformat()} but the file name says {named_date}")
        subject = self.front.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise ParseError(self.source, "front matter subject must be text", 2)
        if subject is not None:
            subject = " ".join(subject.split())  # one line: it becomes a mail header
        return number[0], date[0], subject or None

    def _front_date(self, value: object) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        match = _DATE_ISO.match(str(value)) or _DATE_CN.search(str(value))
        if not match:
            raise ParseError(self.source, f"front matter date {value!r} is not YYYY-MM-DD", 2)
        return self._date(match.groups(), 2)

    # -- items

    def _finish_sections(self, drafts: list[_SectionDraft]) -> tuple[Section, ...]:
        explicit: dict[str, int] = {}
        for draft in (d for s in drafts for d in s.items if d.explicit_key):
            key = draft.explicit_key or ""
            if key in explicit:
                raise ParseError(
                    self.source, f"item key {{#{key}}} is already used on line {explicit[key]}", draft.line
                )
            if key in self.pub.slugs:
                raise ParseError(
                    self.source, f"item key {{#{key}}} is a section's name on the page; pick another", draft.line
                )
            explicit[key] = draft.line
        taken = set(explicit)
        sections = []
        for section in drafts:
            items = []
            for draft in section.items:
                if not self._keep(draft, section):
                    continue
                key = draft.explicit_key or _unique(derive_key(draft.title), taken)
                taken.add(key)
                html, text = self._render_body(draft.body)
                items.append(Item(key=key, title=draft.title, text=text, html=html, line=draft.line))
            sections.append(Section(section.name, section.slug, tuple(items)))
        return tuple(sections)

    def _keep(self, draft: _Draft, section: _SectionDraft) -> bool:
        """Warn about an empty item or a section-like heading; an empty section-like heading is no item."""
        if draft.section_like:
            unconfigured = f"heading {draft.title!r} looks like a section but is not configured in feedsvc.toml"
            if not draft.body:
                self.warn(draft.line, f"{unconfigured}; left out, the items under it stay in {section.name}")
                return False
            self.warn(draft.line, f"{unconfigured}; kept as an item of {section.name}")
        elif not draft.body:
            self.warn(draft.line, f"item {_clip(draft.title)!r} has no text")
        return True

    def _render_body(self, body: list[_Block]) -> tuple[str, str]:
        markdown = "\n\n".join(
            block.source if block.kind != "paragraph" else block.content for block in _join_page_breaks(body)
        )
        tokens = MARKDOWN.parse(markdown)
        return MARKDOWN.renderer.render(tokens, MARKDOWN.options, {}), _tokens_text(tokens)


def load_issues(paths: Iterable[str | Path], publication: Publication) -> list[Issue]:
    """Parse several issue files, newest first; two files with the same number are refused."""
    seen: dict[int, str] = {}
    issues = []
    for path in paths:
        issue = parse(path, publication)
        if issue.number in seen:
            raise ParseError(path, f"issue number {issue.number} is already used by {seen[issue.number]}")
        seen[issue.number] = str(path)
        issues.append(issue)
    return sorted(issues, key=lambda i: (i.date, i.number), reverse=True)


def issue_files(folder: str | Path) -> list[Path]:
    """The issue files in a folder: every *.md, in name order (hidden files and README left out)."""
    return sorted(p for p in Path(folder).glob("*.md") if not p.name.startswith(".") and p.name.lower() != "readme.md")


def derive_key(title: str) -> str:
    """A short key that depends only on the item's own title (whitespace and width folded)."""
    folded = "".join(unicodedata.normalize("NFKC", title).split()).lower()
    return hashlib.blake2s(folded.encode("utf-8"), digest_size=5).hexdigest()


# ------------------------------------------------------------------------------------------- helpers


def _unique(key: str, taken: set[str]) -> str:
    if key not in taken:
        return key
    n = 2
    while f"{key}-{n}" in taken:
        n += 1
    return f"{key}-{n}"


def _starts_with_marker(text: str, markers: Sequence[str]) -> bool:
    return any(text.startswith(m) and text[len(m) : len(m) + 1] in ("：", ":") for m in markers)


def _is_bold(content: str) -> bool:
    """True when the whole inline content is one strong span (``**…**`` or ``__…__``)."""
    content = content.strip()
    for marker in ("**", "__"):
        inner = content[2:-2]
        if len(content) > 4 and content.startswith(marker) and content.endswith(marker) and marker not in inner:
            return True
    return False


def _glue(left: str, right: str) -> str:
    """What goes between two pieces of one sentence: nothing beside CJK text, else a space."""
    a, b = left.rstrip()[-1:], right.lstrip()[:1]
    return "" if is_cjk(a) or is_cjk(b) else " "


def _ends_sentence(content: str) -> bool:
    text = _inline_text(content).rstrip()
    while text and text[-1] in _CLOSERS:
        if len(text) > 1 and text[-2] in _TERMINAL:
            return True
        text = text[:-1]
    return not text or text[-1] in _TERMINAL


def _unwrap(content: str) -> str:
    """Join the lines of one paragraph; CJK text gets no space where a line was wrapped."""
    lines = [line.strip() for line in content.split("\n")]
    out = lines[0]
    for line in lines[1:]:
        out += _glue(out, line) + line
    return out


def _join_page_breaks(body: list[_Block]) -> list[_Block]:
    """Join a paragraph that stops mid-sentence (a page break) with the paragraph after it."""
    out: list[_Block] = []
    for block in body:
        if block.kind == "paragraph":
            block = replace(block, content=_unwrap(block.content))
            prev = out[-1] if out else None
            if prev is not None and prev.kind == "paragraph" and not _ends_sentence(prev.content):
                out[-1] = replace(prev, content=prev.content + _glue(prev.content, block.content) + block.content)
                continue
        out.append(block)
    return out


def _inline_text(markdown: str) -> str:
    """The plain text of inline Markdown (emphasis markers removed, link text kept)."""
    if not markdown:
        return ""
    tokens = MARKDOWN.parseInline(markdown)
    return _children_text(tokens[0].children or [] if tokens else [], links=False).strip()


def _block_text(block: _Block) -> str:
    return _inline_text(block.content) if block.content else block.source.strip()


def _children_text(children: Sequence[Token], links: bool = True) -> str:
    parts: list[str] = []
    href_stack: list[str] = []
    start_stack: list[int] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or "")
        elif child.type == "link_open":
            href_stack.append(str(child.attrs.get("href", "")))
            start_stack.append(len(parts))
        elif child.type == "link_close" and href_stack:
            href, start = href_stack.pop(), start_stack.pop()
            label = "".join(parts[start:])
            if links and href and href not in (label, f"mailto:{label}"):
                parts.append(f" ({href})")
    return "".join(parts)


def _tokens_text(tokens: Sequence[Token]) -> str:
    """A readable plain-text rendition of block tokens: paragraphs, lists as "- ", links as URLs."""
    out: list[str] = []
    lists: list[list[int]] = []  # a stack of [ordered?, counter]
    prefix = ""
    for token in tokens:
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append([token.type == "ordered_list_open", int(token.attrs.get("start", 1) or 1)])
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                out.append("\n")
        elif token.type == "list_item_open":
            ordered, counter = lists[-1]
            prefix = "  " * (len(lists) - 1) + (f"{counter}. " if ordered else "- ")
            lists[-1][1] = counter + 1
        elif token.type == "inline":
            text = _children_text(token.children or [])
            out.append(prefix + text)
            prefix = ""
            out.append("\n" if lists else "\n\n")
        elif token.type in ("fence", "code_block"):
            out.append(token.content.rstrip("\n") + "\n\n")
        elif token.type == "hr":
            out.append("\n")
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip()


def _clip(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

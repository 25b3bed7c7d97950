"""The body of an issue: the summary list, configured sections with their item drafts, and the colophon.

Each top-level block is classified (summary heading, section heading, item heading, text) and assembled
into drafts; items are finished (keys, HTML, text) in feedsvc.content.items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from feedsvc.content.blocks import Block, Reading
from feedsvc.content.text import clip, inline_text, is_bold, starts_with_marker

_BULLETS = "◆◇●○•■□▪▫►▶★☆·-–—"
_KEY_SUFFIX = re.compile(r"\s*\{#([^{}]*)\}\s*$")
_KEY_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_LIST_MARK = re.compile(r"^(?:[-*+]|\d+[.)])\s+")


@dataclass
class ItemDraft:
    """An item heading and the blocks under it, before keys and rendering."""

    title: str
    line: int
    explicit_key: str | None
    body: list[Block] = field(default_factory=list)
    section_like: bool = False  # a plain ## heading that is not a configured section


@dataclass
class SectionDraft:
    """A configured section as met in the file, with its item drafts."""

    name: str
    slug: str
    line: int
    items: list[ItemDraft] = field(default_factory=list)


def names_section(block: Block, reading: Reading) -> bool:
    """True when `block` is a heading that names a configured section."""
    if block.kind != "heading" or block.level > 2:
        return False
    return reading.publication.section_by_name(inline_text(block.content).rstrip("：:").strip()) is not None


def split_colophon(blocks: list[Block], markers: tuple[str, ...]) -> tuple[list[Block], list[str]]:
    """The trailing run of marker paragraphs (and rules between them) is the colophon."""
    start = len(blocks)
    for i in range(len(blocks) - 1, -1, -1):
        block = blocks[i]
        if block.kind == "hr":
            continue
        if block.kind == "paragraph" and starts_with_marker(inline_text(block.content), markers):
            start = i
            continue
        break
    while start < len(blocks) and blocks[start].kind == "hr":
        start += 1
    colophon = [inline_text(b.content) for b in blocks[start:] if b.kind == "paragraph"]
    return blocks[:start], colophon


class _Assembly:
    """Walks the body blocks in order, keeping the section and item that text belongs to."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.summary: list[str] = []
        self.sections: list[SectionDraft] = []
        self.by_slug: dict[str, SectionDraft] = {}
        self.section: SectionDraft | None = None
        self.item: ItemDraft | None = None
        self.in_summary = False

    def heading(self, block: Block) -> None:
        """A heading opens the summary, a section or an item (level 4 and deeper stay in the item)."""
        content, key = split_key(block, self.reading)
        name = inline_text(content)
        bare = name.rstrip("：:").strip()
        configured = self.reading.publication.section_by_name(bare)
        self.in_summary = False
        if block.level <= 2 and bare == self.reading.publication.summary_heading:
            self.in_summary, self.item = True, None
        elif block.level <= 2 and configured:
            self.open_section(block, configured.name, configured.slug, key)
        elif block.level >= 4 and self.item is not None:
            self.item.body.append(block)
        elif self.section is None:
            raise self.reading.error(f"item {clip(name)!r} comes before any section heading", block.line)
        elif not name:
            raise self.reading.error("an item heading has no title", block.line)
        else:
            self.item = ItemDraft(name, block.line, key, section_like=block.level <= 2 and not is_bold(content))
            self.section.items.append(self.item)

    def open_section(self, block: Block, name: str, slug: str, key: str | None) -> None:
        """A section heading; a section met again gathers its items into the first one."""
        if key:
            self.reading.warn(block.line, f"{{#{key}}} on a section heading is ignored")
        if slug in self.by_slug:
            self.reading.warn(block.line, f"section {name} appears again; its items join the first one")
            self.section = self.by_slug[slug]
        else:
            self.section = SectionDraft(name, slug, block.line)
            self.by_slug[slug] = self.section
            self.sections.append(self.section)
        self.item = None

    def text(self, block: Block) -> None:
        """Anything but a heading: a summary line, the body of the current item, or text that is left out."""
        if self.in_summary:
            self.summary.extend(summary_lines(block))
        elif block.kind == "hr":
            return
        elif self.item is not None:
            self.item.body.append(block)
        else:
            where = f"section {self.section.name}" if self.section else "the summary"
            self.reading.warn(
                block.line,
                f"text {clip(block.text)!r} after {where} belongs to no item and is left out; give it a heading",
            )


def assemble(blocks: list[Block], reading: Reading) -> tuple[list[str], list[SectionDraft]]:
    """The summary lines and the section drafts of the body `blocks`."""
    assembly = _Assembly(reading)
    for block in blocks:
        if block.kind == "heading":
            assembly.heading(block)
        else:
            assembly.text(block)
    for section in assembly.sections:
        if not section.items:
            reading.warn(section.line, f"section {section.name} has no items")
    return assembly.summary, assembly.sections


def split_key(block: Block, reading: Reading) -> tuple[str, str | None]:
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
        raise reading.error(
            f"item key {{#{key}}} must be 1-64 ASCII letters, digits, '-' or '_', starting with a letter or digit",
            block.line,
        )
    return content[: match.start()].rstrip() + closing, key


def summary_lines(block: Block) -> list[str]:
    """The highlights of a block under the summary heading, list marks and ◆ bullets removed."""
    if block.kind == "hr":
        return []
    lines = []
    for raw in block.source.split("\n"):
        text = _LIST_MARK.sub("", raw.strip())
        text = inline_text(text).lstrip(_BULLETS).strip()
        if text:
            lines.append(text)
    return lines

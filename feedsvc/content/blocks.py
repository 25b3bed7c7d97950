"""One reading of an issue file: its lines cut into top-level Markdown blocks, and the warnings on the way.

The first pass over a file needs only block structure and line numbers, so no inline parsing happens here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from feedsvc.config import Publication
from feedsvc.content.markdown import make_markdown
from feedsvc.content.model import ParseError, ParseWarning
from feedsvc.content.text import ends_sentence, glue, inline_text, unwrap

# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, DEL is allowed but useless, and the two
# non-characters U+FFFE/U+FFFF). Feeds with them are not well-formed, so they go before anything else.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")

STRUCTURE = make_markdown().disable(["inline", "linkify", "text_join"])


@dataclass
class Reading:
    """The file being read (for messages), the publication it belongs to, and the warnings so far."""

    source: str
    publication: Publication
    warnings: list[ParseWarning] = field(default_factory=list)

    def warn(self, line: int, message: str) -> None:
        """Note something the publisher should look at; the issue is still read."""
        self.warnings.append(ParseWarning(line, message))

    def error(self, message: str, line: int | None = None) -> ParseError:
        """A refusal naming this file (and `line`), for the caller to raise."""
        return ParseError(self.source, message, line)


@dataclass
class Block:
    """A top-level Markdown block with its 1-based first line and its source."""

    kind: str  # heading, paragraph, hr or other (lists, quotes, code, tables)
    line: int
    source: str
    level: int = 0
    content: str = ""  # the inline Markdown of a heading or paragraph

    @property
    def text(self) -> str:
        """The block's plain text (its source when it is neither heading nor paragraph)."""
        return inline_text(self.content) if self.content else self.source.strip()


def drop_forbidden(text: str, reading: Reading) -> str:
    """`text` without the characters XML forbids, with a warning per line that had some."""
    if not _FORBIDDEN.search(text):
        return text
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        cleaned, count = _FORBIDDEN.subn("", line)
        if count:
            reading.warn(number, f"removed {count} control character(s) that feeds cannot carry")
        out.append(cleaned)
    return "\n".join(out)


def split_blocks(lines: list[str]) -> list[Block]:
    """The top-level blocks of a file's `lines`, in order."""
    tokens = STRUCTURE.parse("\n".join(lines))
    blocks: list[Block] = []
    for index, token in enumerate(tokens):
        if token.level != 0 or token.nesting == -1 or token.map is None:
            continue
        start, end = token.map
        source = "\n".join(lines[start:end])
        if token.type == "heading_open":
            inline = tokens[index + 1].content
            blocks.append(Block("heading", start + 1, source, int(token.tag[1]), inline))
        elif token.type == "paragraph_open":
            blocks.append(Block("paragraph", start + 1, source, content=tokens[index + 1].content))
        elif token.type == "hr":
            blocks.append(Block("hr", start + 1, source))
        else:
            blocks.append(Block("other", start + 1, source))
    return blocks


def join_page_breaks(body: list[Block]) -> list[Block]:
    """Join a paragraph that stops mid-sentence (a page break) with the paragraph after it."""
    out: list[Block] = []
    for block in body:
        if block.kind == "paragraph":
            block = replace(block, content=unwrap(block.content))
            prev = out[-1] if out else None
            if prev is not None and prev.kind == "paragraph" and not ends_sentence(prev.content):
                out[-1] = replace(prev, content=prev.content + glue(prev.content, block.content) + block.content)
                continue
        out.append(block)
    return out

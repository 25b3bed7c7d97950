"""Plain text out of feedsvc's Markdown: inline text, a readable rendition of blocks, sentence ends, clipping.

Used by the reader to name headings, find markers and write an item's text part. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it.token import Token

from feedsvc.content.markdown import is_cjk, make_markdown

# Plain text only needs the dialect's inline rules; the image policy does not matter (an image is its alt text).
INLINE = make_markdown()

_TERMINAL = set("。！？!?…；;：:.")
_CLOSERS = set("”’\"'」』）)》〉】]")


def inline_text(markdown: str) -> str:
    """The plain text of inline Markdown (emphasis markers removed, link text kept)."""
    if not markdown:
        return ""
    tokens = INLINE.parseInline(markdown)
    return children_text(tokens[0].children or [] if tokens else [], links=False).strip()


def children_text(children: Sequence[Token], links: bool = True) -> str:
    """The text of inline tokens; with `links`, a link's URL follows its label when they differ."""
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


def tokens_text(tokens: Sequence[Token]) -> str:
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
            text = children_text(token.children or [])
            out.append(prefix + text)
            prefix = ""
            out.append("\n" if lists else "\n\n")
        elif token.type in ("fence", "code_block"):
            out.append(token.content.rstrip("\n") + "\n\n")
        elif token.type == "hr":
            out.append("\n")
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip()


def is_bold(content: str) -> bool:
    """True when the whole inline content is one strong span (``**…**`` or ``__…__``)."""
    content = content.strip()
    for marker in ("**", "__"):
        inner = content[2:-2]
        if len(content) > 4 and content.startswith(marker) and content.endswith(marker) and marker not in inner:
            return True
    return False


def starts_with_marker(text: str, markers: Sequence[str]) -> bool:
    """True when `text` opens with one of `markers` followed by a colon (``编辑部：``)."""
    return any(text.startswith(m) and text[len(m) : len(m) + 1] in ("：", ":") for m in markers)


def glue(left: str, right: str) -> str:
    """What goes between two pieces of one sentence: nothing beside CJK text, else a space."""
    a, b = left.rstrip()[-1:], right.lstrip()[:1]
    return "" if is_cjk(a) or is_cjk(b) else " "


def ends_sentence(content: str) -> bool:
    """True when inline Markdown ends with closing punctuation (possibly inside quotes or brackets)."""
    text = inline_text(content).rstrip()
    while text and text[-1] in _CLOSERS:
        if len(text) > 1 and text[-2] in _TERMINAL:
            return True
        text = text[:-1]
    return not text or text[-1] in _TERMINAL


def unwrap(content: str) -> str:
    """Join the lines of one paragraph; CJK text gets no space where a line was wrapped."""
    lines = [line.strip() for line in content.split("\n")]
    out = lines[0]
    for line in lines[1:]:
        out += glue(out, line) + line
    return out


def clip(text: str, width: int = 40) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis (for messages)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

"""The one Markdown dialect of feedsvc: CommonMark, raw HTML escaped, safe links, CJK-friendly emphasis.

CommonMark decides whether ``**`` opens or closes emphasis from the characters beside it, and a
closing ``**`` after full-width punctuation and before a CJK letter (``**编辑部：**中国``) counts as
neither, so the asterisks would stay on the page. Chinese text has no spaces to fix that with, so
here a CJK character next to the delimiter counts like punctuation or white space, as in the
markdown-it-cjk-friendly extension.

Remote images follow one policy (feedsvc.toml ``[content] images``): "https" keeps https images only,
"none" keeps none. A dropped image leaves its alt text, so pages, feeds and mails all read the same.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.common.utils import isMdAsciiPunct, isPunctChar, isWhiteSpace
from markdown_it.parser_inline import ParserInline
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline.state_inline import Scanned, StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType

from feedsvc.config import IMAGE_POLICIES

SAFE_SCHEMES = ("http://", "https://", "mailto:")
DROPPED_IMAGES = "feedsvc_dropped_images"  # the env key that collects the src of every dropped image


def is_cjk(char: str) -> bool:
    """A wide (East Asian) character, CJK punctuation included."""
    return bool(char) and unicodedata.east_asian_width(char) in ("W", "F")


def safe_link(url: str) -> bool:
    """Only http(s) and mailto links survive; javascript:, data:, relative and the rest become text."""
    return url.strip().lower().startswith(SAFE_SCHEMES)


class _CjkStateInline(StateInline):
    def scanDelims(self, start: int, canSplitWord: bool) -> Scanned:
        marker = self.src[start]
        pos = start
        while pos < self.posMax and self.src[pos] == marker:
            pos += 1
        last = self.src[start - 1] if start > 0 else " "
        nxt = self.src[pos] if pos < self.posMax else " "
        last_punct = isMdAsciiPunct(ord(last)) or isPunctChar(last)
        next_punct = isMdAsciiPunct(ord(nxt)) or isPunctChar(nxt)
        last_space, next_space = isWhiteSpace(ord(last)), isWhiteSpace(ord(nxt))
        last_cjk, next_cjk = is_cjk(last), is_cjk(nxt)
        left = not (next_space or (next_punct and not (last_space or last_punct or last_cjk)))
        right = not (last_space or (last_punct and not (next_space or next_punct or next_cjk)))
        can_open = left and (canSplitWord or not right or last_punct or last_cjk)
        can_close = right and (canSplitWord or not left or next_punct or next_cjk)
        return Scanned(can_open, can_close, pos - start)


class _CjkParserInline(ParserInline):
    def parse(self, src: str, md: MarkdownIt, env: EnvType, tokens: list[Token]) -> list[Token]:
        state = _CjkStateInline(src, md, env, tokens)
        self.tokenize(state)
        for rule in self.ruler2.getRules(""):
            rule(state)
        return state.tokens


def make_markdown(images: str = "https") -> MarkdownIt:
    """A fresh parser in feedsvc's dialect, keeping the remote images that the `images` policy allows."""
    if images not in IMAGE_POLICIES:
        raise ValueError(f"image policy {images!r} is not one of {', '.join(IMAGE_POLICIES)}")
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable(["linkify", "table", "strikethrough"])
    inline = _CjkParserInline()
    inline.ruler, inline.ruler2 = md.inline.ruler, md.inline.ruler2
    md.inline = inline
    md.validateLink = safe_link  # type: ignore[method-assign]
    md.core.ruler.after("inline", "feedsvc_images", _image_filter(images))
    return md


@cache
def dialect(images: str = "https") -> MarkdownIt:
    """The shared parser for an image policy (parsers are reusable; making one costs about a millisecond)."""
    return make_markdown(images)


def _image_filter(images: str) -> Callable[[StateCore], None]:
    """A core rule that swaps each image the policy refuses for its alt text, noting its src in the env."""

    def keep_allowed_images(state: StateCore) -> None:
        for token in state.tokens:
            if token.type != "inline" or not token.children:
                continue
            for index, child in enumerate(token.children):
                if child.type == "image" and not _image_allowed(str(child.attrs.get("src", "")), images):
                    state.env.setdefault(DROPPED_IMAGES, []).append(str(child.attrs.get("src", "")))
                    token.children[index] = Token("text", "", 0, content=child.content)

    return keep_allowed_images


def _image_allowed(src: str, images: str) -> bool:
    return images == "https" and src.strip().lower().startswith("https://")

"""Finishing items: keys (explicit ``{#key}`` or derived from the title), HTML and plain text of each body.

Bodies are rendered in feedsvc's one Markdown dialect with the publication's image policy; every image the
policy drops is reported as a warning on its line.
"""

from __future__ import annotations

import hashlib
import unicodedata

from feedsvc.content.blocks import Block, Reading, join_page_breaks
from feedsvc.content.body import ItemDraft, SectionDraft
from feedsvc.content.markdown import DROPPED_IMAGES, dialect
from feedsvc.content.model import Item, Section
from feedsvc.content.text import clip, tokens_text


def derive_key(title: str) -> str:
    """A short key that depends only on the item's own title (whitespace and width folded)."""
    folded = "".join(unicodedata.normalize("NFKC", title).split()).lower()
    return hashlib.blake2s(folded.encode("utf-8"), digest_size=5).hexdigest()


def finish_sections(drafts: list[SectionDraft], reading: Reading) -> tuple[Section, ...]:
    """The sections with their items keyed and rendered; explicit keys are checked first."""
    taken = set(_explicit_keys(drafts, reading))
    sections = []
    for section in drafts:
        items = []
        for draft in section.items:
            if not _keep(draft, section, reading):
                continue
            key = draft.explicit_key or _unique(derive_key(draft.title), taken)
            taken.add(key)
            html, text = render_body(draft.body, reading)
            items.append(Item(key=key, title=draft.title, text=text, html=html, line=draft.line))
        sections.append(Section(section.name, section.slug, tuple(items)))
    return tuple(sections)


def render_body(body: list[Block], reading: Reading) -> tuple[str, str]:
    """The HTML and the plain text of an item's blocks, page breaks joined."""
    joined = join_page_breaks(body)
    markdown = "\n\n".join(block.source if block.kind != "paragraph" else block.content for block in joined)
    md = dialect(reading.publication.images)
    env: dict[str, list[str]] = {}
    tokens = md.parse(markdown, env)
    for src in env.get(DROPPED_IMAGES, ()):
        reading.warn(_line_of(src, body), f"image {clip(src, 60)!r} is left out ({_policy(reading)})")
    return md.renderer.render(tokens, md.options, env), tokens_text(tokens)


def _explicit_keys(drafts: list[SectionDraft], reading: Reading) -> dict[str, int]:
    """Every ``{#key}`` with its line; a key used twice or equal to a section slug is refused."""
    explicit: dict[str, int] = {}
    for draft in (d for s in drafts for d in s.items if d.explicit_key):
        key = draft.explicit_key or ""
        if key in explicit:
            raise reading.error(f"item key {{#{key}}} is already used on line {explicit[key]}", draft.line)
        if key in reading.publication.slugs:
            raise reading.error(f"item key {{#{key}}} is a section's name on the page; pick another", draft.line)
        explicit[key] = draft.line
    return explicit


def _keep(draft: ItemDraft, section: SectionDraft, reading: Reading) -> bool:
    """Warn about an empty item or a section-like heading; an empty section-like heading is no item."""
    if draft.section_like:
        unconfigured = f"heading {draft.title!r} looks like a section but is not configured in feedsvc.toml"
        if not draft.body:
            reading.warn(draft.line, f"{unconfigured}; left out, the items under it stay in {section.name}")
            return False
        reading.warn(draft.line, f"{unconfigured}; kept as an item of {section.name}")
    elif not draft.body:
        reading.warn(draft.line, f"item {clip(draft.title)!r} has no text")
    return True


def _unique(key: str, taken: set[str]) -> str:
    if key not in taken:
        return key
    n = 2
    while f"{key}-{n}" in taken:
        n += 1
    return f"{key}-{n}"


def _line_of(src: str, body: list[Block]) -> int:
    """The file line that holds `src` (the first block's line if it cannot be found)."""
    for block in body:
        at = block.source.find(src)
        if at >= 0:
            return block.line + block.source.count("\n", 0, at)
    return body[0].line if body else 0


def _policy(reading: Reading) -> str:
    if reading.publication.images == "none":
        return 'feedsvc.toml [content] images = "none"'
    return "only https images are kept"

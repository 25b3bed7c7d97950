"""Highlighted snippets of a search result: a window of the text around the first match, escaped, terms marked."""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup, escape

from feedsvc.search.tokens import Term

SNIPPET_CHARS = 120


def _pattern(terms: list[Term]) -> re.Pattern[str] | None:
    words = sorted({t.text for t in terms}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def highlight(text: str, terms: list[Term], width: int = 0) -> Markup:
    """`text` (NFKC-folded, cut to `width` characters around the first match when width > 0), HTML-escaped,
    with every occurrence of a term in <mark>."""
    text = unicodedata.normalize("NFKC", text)
    pattern = _pattern(terms)
    first = pattern.search(text) if pattern else None
    if width and len(text) > width:
        start = max(0, (first.start() if first else 0) - width // 3)
        text = ("…" if start else "") + text[start : start + width] + ("…" if start + width < len(text) else "")
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(Markup("<mark>") + escape(match.group(0)) + Markup("</mark>"))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)

"""The one Jinja environment for every mail (issues and notices), per template folder and language."""

from __future__ import annotations

import unicodedata
from functools import cache

import jinja2

from feedsvc.i18n import translate


@cache
def environment(folder: str, lang: str) -> jinja2.Environment:
    """Templates from `folder` (HTML autoescaped, strict undefined), with `_` translating into `lang`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals["_"] = lambda text, **values: translate(text, lang, **values)
    env.filters["underline"] = underline
    return env


def underline(text: str, char: str = "=", width: int | None = None) -> str:
    """`text` and a line of `char` as wide as it looks in a monospaced font (CJK counts double)."""
    if width is None:
        width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return f"{text}\n{char * max(width, 3)}" if text else char * width

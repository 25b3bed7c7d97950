"""UI text in Chinese (zh-CN, the source language) with English available. Pure.

Templates and code write the Chinese text; `translate(text, lang)` returns the English for "en". The
English catalogs are TOML files under feedsvc/locales/en/, one per area (web pages, subscription pages,
email), merged at start. A text with no entry is shown in Chinese, never as a key.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LOCALES = Path(__file__).parent / "locales"
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # not strftime("%B"): that follows the machine's locale


@cache
def catalog(lang: str) -> Mapping[str, str]:
    """Every translation for `lang`, merged from its TOML files (each a table of 中文 = "English")."""
    merged: dict[str, str] = {}
    folder = LOCALES / lang.split("-")[0]
    for path in sorted(folder.glob("*.toml")):
        merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
    return merged


def translate(text: str, lang: str, **values: object) -> str:
    """`text` in `lang`, with {placeholders} filled from `values`."""
    result = text if lang == DEFAULT_LANGUAGE else catalog(lang).get(text, text)
    return result.format(**values) if values else result


def negotiate(requested: str | None, accept: Iterable[tuple[str, float]] = ()) -> str:
    """An explicit choice (?lang=, cookie) if known, else the best of Accept-Language, else zh-CN."""
    if requested in LANGUAGES:
        return requested
    for tag, _quality in sorted(accept, key=lambda pair: -pair[1]):
        tag = tag.lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def date_text(value: dt.date, lang: str) -> str:
    """A date as a reader of `lang` writes it: 2024 年 1 月 22 日, or 22 January 2024 (never the machine's locale)."""
    if lang == "en":
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    return f"{value.year} 年 {value.month} 月 {value.day} 日"

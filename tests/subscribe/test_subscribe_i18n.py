"""Every text of the subscription pages has its English, and the English pages show no Chinese text of ours."""

from __future__ import annotations

import re
from pathlib import Path

from feedsvc.i18n import catalog

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "_subscribe_form",
    "subscribe",
    "subscribe_sent",
    "confirm",
    "manage_request",
    "manage",
    "unsubscribe",
    "token_error",
    "csrf_error",
    "erased",
    "rate_limited",
]
TEXT = re.compile(r"""_\('([^']+)'""")
CODE_TEXT = re.compile(r'''_t\("([^"]+)"''')


def texts() -> list[str]:
    found = {t for page in PAGES for t in TEXT.findall((ROOT / "templates/web" / f"{page}.html").read_text("utf-8"))}
    found |= set(CODE_TEXT.findall((ROOT / "feedsvc/web/subscribe.py").read_text("utf-8")))
    return sorted(found)


def test_every_text_has_english() -> None:
    english = catalog("en")
    found = texts()
    assert len(found) > 50
    assert [t for t in found if not english.get(t)] == []
    assert [t for t in found if re.search(r"[\u4e00-\u9fff]", english[t])] == []
    assert [t for t in found if set(re.findall(r"\{\w+\}", english[t])) != set(re.findall(r"\{\w+\}", t))] == []

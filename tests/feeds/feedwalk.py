"""Helpers for the history tests: a generated back catalogue, and a reader's walk over a built site's feeds.

The walks read files, not HTTP: a URL of the site maps to the file the build wrote for it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import feedparser

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "issues" / "2024-01-22-398.md").read_text(encoding="utf-8")
SEED_ITEMS = 27


def write_catalogue(folder: Path, count: int, last: int = 398, last_date: dt.date = dt.date(2024, 1, 22)) -> None:
    """`count` weekly issues made from the seed, the newest numbered `last` on `last_date`, a week apart."""
    folder.mkdir(parents=True, exist_ok=True)
    for offset in range(count):
        write_seed_copy(folder, last - offset, last_date - dt.timedelta(weeks=offset))


def write_seed_copy(folder: Path, number: int, date: dt.date) -> Path:
    """The seed issue under another number and date."""
    text = SEED_TEXT.replace("第 398 期", f"第 {number} 期").replace(
        "2024 年 1 月 22 日", f"{date.year} 年 {date.month} 月 {date.day} 日"
    )
    path = folder / f"{date.isoformat()}-{number}.md"
    path.write_text(text, encoding="utf-8")
    return path


def site_path(site_dir: Path, base_url: str, url: str) -> Path:
    """The built file behind a URL of the site."""
    assert url.startswith(base_url + "/"), url
    return site_dir / url[len(base_url) + 1 :]


def walk_atom(site_dir: Path, base_url: str, name: str) -> list[tuple[str, Any]]:
    """(URL, feedparser result) of the subscription document of feed `name`, then of each archive that
    ``prev-archive`` leads to, as a reader that follows RFC 5005 §4.2 reads them."""
    seen: list[tuple[str, Any]] = []
    url = f"{base_url}/feeds/{name}.atom"
    while url:
        assert url not in {u for u, _ in seen}, f"prev-archive loops back to {url}"
        parsed = feedparser.parse(site_path(site_dir, base_url, url).read_bytes())
        seen.append((url, parsed))
        url = next((link.href for link in parsed.feed.get("links", []) if link.rel == "prev-archive"), "")
    return seen


def walk_json(site_dir: Path, base_url: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(URL, document) of the JSON Feed of `name` and each page its ``next_url`` leads to."""
    seen: list[tuple[str, dict[str, Any]]] = []
    url = f"{base_url}/feeds/{name}.json"
    while url:
        assert url not in {u for u, _ in seen}, f"next_url loops back to {url}"
        document = json.loads(site_path(site_dir, base_url, url).read_bytes())
        seen.append((url, document))
        url = document.get("next_url", "")
    return seen

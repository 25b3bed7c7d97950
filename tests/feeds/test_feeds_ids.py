"""Entry ids are the promise to feed readers: the same item keeps its id through rebuilds, edits of other
items, corrections of its own body, and a move of the site to another address."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import feedparser

from feedsvc.config import Publication
from feedsvc.content.reader import parse_text
from feedsvc.site.feeds import render_feeds

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "issues" / "2024-01-22-398.md").read_text(encoding="utf-8")
TITLE = "快手和携程宣布达成战略合作"
BODY = "1 月 17 日，快手和携程共同宣布达成战略合作。"


def ids_by_title(text: str, publication: Publication) -> dict[str, str]:
    """Title → entry id, over the `all` feed of the issue in `text`."""
    issue = parse_text(text, publication, source="2024-01-22-398.md")
    parsed = feedparser.parse(render_feeds([issue], publication)["feeds/all.atom"])
    assert parsed.bozo == 0
    return {entry.title: entry.id for entry in parsed.entries}


def test_ids_are_the_same_after_a_rebuild(golden_publication: Publication) -> None:
    first = ids_by_title(SEED_TEXT, golden_publication)
    assert len(first) == 27
    assert ids_by_title(SEED_TEXT, golden_publication) == first


def test_editing_one_item_changes_no_other_id(golden_publication: Publication) -> None:
    before = ids_by_title(SEED_TEXT, golden_publication)
    assert TITLE in SEED_TEXT and BODY in SEED_TEXT
    edited = SEED_TEXT.replace(TITLE, "快手与携程宣布达成战略合作").replace(BODY, "1 月 17 日，快手与携程宣布合作。")
    after = ids_by_title(edited, golden_publication)
    assert len(after) == 27
    unchanged = {title: tag for title, tag in before.items() if title != TITLE}
    assert {title: after[title] for title in unchanged} == unchanged


def test_correcting_an_items_body_keeps_its_id(golden_publication: Publication) -> None:
    before = ids_by_title(SEED_TEXT, golden_publication)
    corrected = SEED_TEXT.replace(BODY, "1 月 17 日，快手和携程宣布达成战略合作（更正）。")
    after = ids_by_title(corrected, golden_publication)
    assert after == before


def test_a_pinned_key_keeps_the_id_through_a_title_correction(golden_publication: Publication) -> None:
    before = ids_by_title(SEED_TEXT, golden_publication)
    key = before[TITLE].rsplit("/", 1)[1]
    pinned = SEED_TEXT.replace(f"### **{TITLE}**", f"### **快手与携程达成战略合作 {{#{key}}}**")
    assert pinned != SEED_TEXT
    after = ids_by_title(pinned, golden_publication)
    assert after["快手与携程达成战略合作"] == before[TITLE]


def test_moving_the_site_keeps_every_id(golden_publication: Publication) -> None:
    moved = replace(golden_publication, base_url="https://elsewhere.example.com/news")
    assert ids_by_title(SEED_TEXT, moved) == ids_by_title(SEED_TEXT, golden_publication)

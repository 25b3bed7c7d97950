"""Honest corrections: a corrected item keeps its id and `published` and gets a later `updated` (from the
site's own manifest, no database); only the feeds holding it change, and in them only that entry."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from pathlib import Path

import feedparser
import pytest

from feedsvc.config import Settings
from feedsvc.site.build import build
from feedsvc.site.manifest import load

SEED = Path(__file__).resolve().parents[2] / "issues" / "2024-01-22-398.md"
RIGHT = "建议关注传媒行业。"  # the last sentence of the first capital item: not in its summary
TYPO = "建议关注传媒行叶。"
FIRST = dt.datetime(2024, 1, 22, 9, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2024, 1, 23, 2, 30, 15, 999, tzinfo=dt.UTC)  # 10:30:15 in Beijing
CAPITAL_ID = "tag:feedsvc.example.org,2024-01-22:398/capital/2a8117815f"
HOLDERS = {f"feeds/{name}.{ext}" for name in ("capital", "all", "issues") for ext in ("atom", "json")}


@pytest.fixture
def with_typo(site_settings: Settings) -> Settings:
    """The seed published with a typo in one item."""
    text = SEED.read_text("utf-8")
    assert text.count(RIGHT) == 1
    (site_settings.issues_dir / SEED.name).write_text(text.replace(RIGHT, TYPO), "utf-8")
    _build(site_settings, FIRST)
    return site_settings


def _build(site_settings: Settings, now: dt.datetime) -> tuple[str, ...]:
    result = build(
        site_settings.issues_dir,
        site_settings.site_dir,
        site_settings.publication,
        site_settings.templates_dir,
        now=now,
    )
    return result.changed


def _feeds(site: Path) -> dict[str, bytes]:
    root = site.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in (root / "feeds").rglob("*") if p.is_file()}


def _correct(site_settings: Settings) -> None:
    (site_settings.issues_dir / SEED.name).write_text(SEED.read_text("utf-8"), "utf-8")


def test_correcting_a_typo_changes_only_that_entry_in_the_feeds_holding_it(with_typo: Settings) -> None:
    before = _feeds(with_typo.site_dir)
    _correct(with_typo)
    changed = set(_build(with_typo, LATER))
    after = _feeds(with_typo.site_dir)
    assert {path for path in after if after[path] != before.get(path)} == HOLDERS
    assert changed == HOLDERS | {"issues/398.html", "issues/398.en.html", "manifest.json"}
    diff = [
        line
        for line in difflib.unified_diff(
            before["feeds/capital.atom"].decode().splitlines(), after["feeds/capital.atom"].decode().splitlines(), n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        "-  <updated>2024-01-22T11:59:39+08:00</updated>",  # the feed's: its newest entry's
        "+  <updated>2024-01-23T10:30:15+08:00</updated>",
        "-    <updated>2024-01-22T11:59:39+08:00</updated>",  # the entry's
        "+    <updated>2024-01-23T10:30:15+08:00</updated>",
        f'-    <content type="html">{_escaped(before, TYPO)}',
        f'+    <content type="html">{_escaped(after, RIGHT)}',
    ]


def _escaped(files: dict[str, bytes], sentence: str) -> str:
    """The content line of the capital entry that contains `sentence`."""
    lines = files["feeds/capital.atom"].decode().splitlines()
    [line] = [text for text in lines if "<content" in text and sentence in text]
    return line.split('<content type="html">', 1)[1]


def test_the_corrected_entry_keeps_id_and_published_and_readers_see_a_later_updated(with_typo: Settings) -> None:
    _correct(with_typo)
    _build(with_typo, LATER)
    site = with_typo.site_dir
    for name in ("capital", "all"):
        [entry] = [
            e for e in feedparser.parse((site / f"feeds/{name}.atom").read_bytes()).entries if e.id == CAPITAL_ID
        ]
        assert entry.published == "2024-01-22T11:59:39+08:00"
        assert entry.updated == "2024-01-23T10:30:15+08:00"
        assert RIGHT in entry.content[0].value
        [item] = [i for i in json.loads((site / f"feeds/{name}.json").read_bytes())["items"] if i["id"] == CAPITAL_ID]
        assert (item["date_published"], item["date_modified"]) == (entry.published, entry.updated)
    record = load((site / "manifest.json").read_bytes())[CAPITAL_ID]
    assert record.updated == dt.datetime.fromisoformat("2024-01-23T10:30:15+08:00")


def test_an_unchanged_rebuild_is_byte_identical_whatever_the_clock(with_typo: Settings) -> None:
    _correct(with_typo)
    _build(with_typo, LATER)
    root = with_typo.site_dir.resolve()
    before = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert _build(with_typo, LATER + dt.timedelta(days=30)) == ()
    root = with_typo.site_dir.resolve()
    assert {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_second_correction_is_later_still_and_never_shares_an_instant(with_typo: Settings) -> None:
    _correct(with_typo)
    _build(with_typo, LATER)
    path = with_typo.issues_dir / SEED.name
    path.write_text(path.read_text("utf-8").replace(RIGHT, "建议关注传媒板块。"), "utf-8")
    _build(with_typo, LATER - dt.timedelta(hours=1))  # a clock that went backwards
    parsed = feedparser.parse((with_typo.site_dir / "feeds/capital.atom").read_bytes())
    [entry] = [e for e in parsed.entries if e.id == CAPITAL_ID]
    assert entry.updated == "2024-01-23T10:30:16+08:00"  # one second after the previous correction
    updated = [e.updated for e in feedparser.parse((with_typo.site_dir / "feeds/all.atom").read_bytes()).entries]
    assert len(set(updated)) == len(updated)


def test_a_site_without_a_manifest_starts_afresh(with_typo: Settings) -> None:
    (with_typo.site_dir.resolve() / "manifest.json").unlink()
    _correct(with_typo)
    _build(with_typo, LATER)
    [entry] = [
        e
        for e in feedparser.parse((with_typo.site_dir / "feeds/capital.atom").read_bytes()).entries
        if e.id == CAPITAL_ID
    ]
    assert entry.updated == entry.published == "2024-01-22T11:59:39+08:00"

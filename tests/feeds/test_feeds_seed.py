"""The feeds of the seed issue, read back by feedparser and by a strict XML parser."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace

import feedparser
import pytest
from lxml import etree

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.site.feeds import build_feeds, feed_names, render_feeds

ATOM = "{http://www.w3.org/2005/Atom}"
TAG_URI = re.compile(r"tag:feedsvc\.example\.org,2024-01-22:398/[a-z]+/[0-9a-f]{10}")


@pytest.fixture
def files(seed_issue: Issue, golden_publication: Publication) -> dict[str, bytes]:
    return render_feeds([seed_issue], golden_publication)


def test_every_feed_is_there(files: dict[str, bytes], golden_publication: Publication) -> None:
    names = feed_names(golden_publication)
    assert names == ("industry", "content", "technology", "capital", "people", "research", "all", "issues")
    assert set(files) == {f"feeds/{n}.{ext}" for n in names for ext in ("atom", "json")}


@pytest.mark.parametrize("name", ["industry", "content", "technology", "capital", "people", "research", "all"])
def test_feedparser_reads_item_feeds(files: dict[str, bytes], name: str, seed_counts: dict[str, int]) -> None:
    parsed = feedparser.parse(files[f"feeds/{name}.atom"])
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    expected = sum(seed_counts.values()) if name == "all" else seed_counts[name]
    assert len(parsed.entries) == expected
    ids = [e.id for e in parsed.entries]
    assert len(set(ids)) == len(ids)
    assert all(TAG_URI.fullmatch(i) for i in ids), ids
    for entry in parsed.entries:
        assert entry.title
        assert entry.content[0].type == "text/html"
        assert entry.content[0].value.startswith("<p>")
        assert re.fullmatch(r"https://news\.example\.org/issues/398#[0-9a-f]{10}", entry.link)
        assert entry.link.rsplit("#", 1)[1] == entry.id.rsplit("/", 1)[1]
        assert entry.published_parsed[:3] == (2024, 1, 22)
        assert entry.updated_parsed[:3] == (2024, 1, 22)
        slug = entry.id.split("/")[-2]
        assert [t.term for t in entry.tags] == [slug]
        if name != "all":
            assert slug == name


def test_seed_totals(files: dict[str, bytes], seed_counts: dict[str, int]) -> None:
    counts = {
        name: len(feedparser.parse(files[f"feeds/{name}.atom"]).entries)
        for name in ("industry", "content", "technology", "capital", "people", "research")
    }
    assert (
        counts
        == seed_counts
        == {
            "industry": 12,
            "content": 5,
            "technology": 4,
            "capital": 2,
            "people": 3,
            "research": 1,
        }
    )
    assert len(feedparser.parse(files["feeds/all.atom"]).entries) == 27


def test_issues_feed_has_the_whole_issue(files: dict[str, bytes]) -> None:
    parsed = feedparser.parse(files["feeds/issues.atom"])
    assert parsed.bozo == 0
    [entry] = parsed.entries
    assert entry.id == "tag:feedsvc.example.org,2024-01-22:398"
    assert entry.title == "行业动态周报 第 398 期"
    assert entry.link == "https://news.example.org/issues/398"
    html = entry.content[0].value
    assert html.count("<h2>") == 6 and html.count("<h3>") == 27
    assert "第五批国家文化和科技融合示范基地名单公布" in entry.summary


def test_feed_metadata(files: dict[str, bytes]) -> None:
    root = etree.fromstring(files["feeds/technology.atom"])
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert root.findtext(f"{ATOM}id") == "tag:feedsvc.example.org,2024:feeds/technology"
    assert root.findtext(f"{ATOM}title") == "行业动态周报 · 技术"
    # the newest entry's: technology's first item is the 18th of the issue, 17 seconds before noon in Beijing
    assert root.findtext(f"{ATOM}updated") == "2024-01-22T11:59:43+08:00"
    assert root.findtext(f"{ATOM}author/{ATOM}name") == "中国网络视听协会"
    links = {(link.get("rel"), link.get("type")): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links[("self", "application/atom+xml")] == "https://news.example.org/feeds/technology.atom"
    assert links[("alternate", "text/html")] == "https://news.example.org/issues/"
    assert [rel for rel, _ in links] == ["self", "alternate"]  # one alternate: the website, for every reader
    assert not any(rel == "hub" for rel, _ in links)
    category = root.find(f"{ATOM}entry/{ATOM}category")
    assert (category.get("term"), category.get("label")) == ("technology", "技术")


def test_entries_keep_issue_order(files: dict[str, bytes], seed_issue: Issue) -> None:
    parsed = feedparser.parse(files["feeds/all.atom"])
    assert [e.title for e in parsed.entries] == [item.title for _, item in seed_issue.items]


def test_websub_hub_is_announced_when_configured(seed_issue: Issue, golden_publication: Publication) -> None:
    hub = "https://hub.example.org/"
    publication = replace(golden_publication, websub_hub=hub)
    files = render_feeds([seed_issue], publication)
    for name in feed_names(publication):
        root = etree.fromstring(files[f"feeds/{name}.atom"])
        assert [link.get("href") for link in root.findall(f"{ATOM}link[@rel='hub']")] == [hub]
        assert json.loads(files[f"feeds/{name}.json"])["hubs"] == [{"type": "WebSub", "url": hub}]


def test_json_feed_mirrors_the_atom_feed(files: dict[str, bytes], golden_publication: Publication) -> None:
    for name in feed_names(golden_publication):
        document = json.loads(files[f"feeds/{name}.json"])
        atom = feedparser.parse(files[f"feeds/{name}.atom"])
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert document["title"] == atom.feed.title
        assert document["feed_url"] == f"https://news.example.org/feeds/{name}.json"
        assert document["home_page_url"] == "https://news.example.org/issues/"
        assert document["language"] == "zh-CN"
        assert document["authors"] == [{"name": "中国网络视听协会", "url": "https://news.example.org/"}]
        assert [i["id"] for i in document["items"]] == [e.id for e in atom.entries]
        assert [i["url"] for i in document["items"]] == [e.link for e in atom.entries]
        for item, entry in zip(document["items"], atom.entries, strict=True):
            assert item["content_html"]
            published = dt.datetime.fromisoformat(item["date_published"]).astimezone(dt.UTC)
            assert published.timetuple()[:6] == entry.published_parsed[:6]


def _issue(seed: Issue, number: int, date: dt.date, slugs: set[str]) -> Issue:
    """A copy of the seed under another number and date, with only some sections."""
    return replace(seed.only(slugs), number=number, date=date)


def test_newest_issue_first_and_limit(seed_issue: Issue, golden_publication: Publication) -> None:
    older = _issue(seed_issue, 397, dt.date(2024, 1, 15), {"technology"})
    publication = replace(golden_publication, feed_limit=6)
    files = render_feeds([older, seed_issue], publication)
    technology = feedparser.parse(files["feeds/technology.atom"]).entries
    assert [e.id.split(":")[-1].split("/")[0] for e in technology] == ["398"] * 4 + ["397"] * 2
    assert len(feedparser.parse(files["feeds/all.atom"]).entries) == 6
    feeds = {f.name: f for f in build_feeds([older, seed_issue], publication)}
    assert len(feeds["technology"].entries) == 8  # the whole history; the older ones are in archives
    assert [e.id for e in feeds["issues"].entries] == [
        "tag:feedsvc.example.org,2024-01-22:398",
        "tag:feedsvc.example.org,2024-01-15:397",
    ]


def test_feed_updated_is_the_newest_entry_so_untouched_feeds_keep_their_bytes(
    seed_issue: Issue, golden_publication: Publication
) -> None:
    before = render_feeds([seed_issue], golden_publication)
    newer = _issue(seed_issue, 399, dt.date(2024, 1, 29), {"industry"})
    after = render_feeds([seed_issue, newer], golden_publication)
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {f"feeds/{name}.{ext}" for name in ("industry", "all", "issues") for ext in ("atom", "json")}
    assert b"<updated>2024-01-29T12:00:00+08:00</updated>" in after["feeds/industry.atom"].split(b"<entry>")[0]


def test_a_feed_without_entries_is_still_valid(golden_publication: Publication) -> None:
    files = render_feeds([], golden_publication)
    parsed = feedparser.parse(files["feeds/research.atom"])
    assert parsed.bozo == 0
    assert parsed.entries == []
    assert parsed.feed.updated == "2024-01-01T00:00:00+08:00"
    assert json.loads(files["feeds/research.json"])["items"] == []


def test_output_does_not_depend_on_the_clock_or_input_order(seed_issue: Issue, golden_publication: Publication) -> None:
    older = _issue(seed_issue, 397, dt.date(2024, 1, 15), {"technology", "people"})
    first = render_feeds([seed_issue, older], golden_publication)
    second = render_feeds([older, seed_issue], golden_publication)
    assert first == second
    stamps = {m for data in first.values() for m in re.findall(rb"\d{4}-\d\d-\d\dT[\d:]+[^<\"]*", data)}
    # each entry its own instant: the issue at noon in Beijing, its n-th item n seconds before
    beijing = dt.timezone(dt.timedelta(hours=8))
    noons = {dt.datetime(2024, 1, 22, 12, tzinfo=beijing): 27, dt.datetime(2024, 1, 15, 12, tzinfo=beijing): 7}
    expected = {
        (noon - dt.timedelta(seconds=n)).isoformat().encode() for noon, items in noons.items() for n in range(items)
    }
    assert stamps == expected

"""The W3C Feed Validator's rules that matter, checked directly (there is no validator binary here): over every
Atom document of a site with archives, no two entries share an `updated`, rel=self is the document's URL, ids
are tag URIs, dates are RFC 3339, xml:lang is a language tag; and entries stand alone in a reader."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import replace
from pathlib import Path

import pytest
from feedwalk import write_catalogue, write_seed_copy
from lxml import etree

from feedsvc.config import Publication, Settings
from feedsvc.content.model import Issue, Item, Section
from feedsvc.site.build import build
from feedsvc.site.feeds import build_feeds, first_sentences, render_feeds

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
TAG_URI = re.compile(r"tag:[a-z0-9.-]+,\d{4}(-\d\d(-\d\d)?)?:[\x21-\x7e]+")  # RFC 4151, ASCII specific part
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")
BEIJING = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture
def documents(site_settings: Settings) -> dict[str, etree._Element]:
    """URL → parsed Atom document, for a site of 8 weekly issues plus a second issue on the last date, limit 10."""
    write_catalogue(site_settings.issues_dir, 8)
    write_seed_copy(site_settings.issues_dir, 399, dt.date(2024, 1, 22))  # two issues on one date
    publication = replace(site_settings.publication, feed_limit=10)
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    root = site_settings.site_dir.resolve()
    return {
        f"{publication.base_url}/{path.relative_to(root)}": etree.parse(str(path)).getroot()
        for path in sorted(root.rglob("*.atom"))
    }


def _instant(element: etree._Element, tag: str) -> dt.datetime:
    text = element.findtext(f"{ATOM}{tag}")
    assert text and RFC3339.fullmatch(text), (tag, text)
    return dt.datetime.fromisoformat(text)


def test_no_two_entries_of_a_document_share_an_updated(documents: dict[str, etree._Element]) -> None:
    assert len(documents) > 40  # subscription documents and archives
    for url, root in documents.items():
        updated = [_instant(entry, "updated") for entry in root.iter(f"{ATOM}entry")]
        assert len(set(updated)) == len(updated), url
        if updated:
            assert _instant(root, "updated") == max(updated), url


def test_self_links_ids_dates_and_languages(documents: dict[str, etree._Element]) -> None:
    for url, root in documents.items():
        assert root.tag == f"{ATOM}feed"
        [own] = root.findall(f"{ATOM}link[@rel='self']")
        assert (own.get("href"), own.get("type")) == (url, "application/atom+xml")
        assert TAG_URI.fullmatch(root.findtext(f"{ATOM}id") or ""), url
        assert LANGUAGE_TAG.fullmatch(root.get(XML_LANG) or ""), url
        assert root.findtext(f"{ATOM}title") and root.findtext(f"{ATOM}author/{ATOM}name")
        ids = [entry.findtext(f"{ATOM}id") for entry in root.iter(f"{ATOM}entry")]
        assert len(set(ids)) == len(ids), url
        for entry in root.iter(f"{ATOM}entry"):
            assert TAG_URI.fullmatch(entry.findtext(f"{ATOM}id") or "")
            assert LANGUAGE_TAG.fullmatch(entry.get(XML_LANG) or "")
            assert _instant(entry, "published") <= _instant(entry, "updated")
            [alternate] = entry.findall(f"{ATOM}link[@rel='alternate']")
            assert alternate.get("type") == "text/html" and alternate.get("href", "").startswith("http://")
            assert entry.find(f"{ATOM}content").get("type") == "html"


def test_readers_sorting_by_date_keep_issue_order_and_show_the_issue_date(
    documents: dict[str, etree._Element], site_settings: Settings
) -> None:
    for url, root in documents.items():
        entries = list(root.iter(f"{ATOM}entry"))
        by_date = sorted(entries, key=lambda e: _instant(e, "updated"), reverse=True)
        assert [e.findtext(f"{ATOM}id") for e in by_date] == [e.findtext(f"{ATOM}id") for e in entries], url
        for entry in entries:
            issue_date = re.search(r",(\d{4}-\d\d-\d\d):", entry.findtext(f"{ATOM}id") or "").group(1)
            assert _instant(entry, "published").astimezone(BEIJING).date().isoformat() == issue_date


def test_the_second_issue_of_a_day_is_newer_than_the_first(documents: dict[str, etree._Element]) -> None:
    all_feed = documents["http://127.0.0.1:8000/feeds/all.atom"]
    numbers = [re.search(r":(\d+)/", e.findtext(f"{ATOM}id") or "").group(1) for e in all_feed.iter(f"{ATOM}entry")]
    assert numbers[:10] == ["399"] * 10  # 399 and 398 share 22 January; 399 comes first


def _hand_made_issue() -> Issue:
    body = (
        '<p>见<a href="/issues/397#abc">上期</a>和<a href="files/a.pdf">附件</a>，<strong>加粗</strong>。'
        '<img src="img/x.png" alt="图">第二句在这里！第三句不在摘要里。</p>'
    )
    item = Item(key="k1", title="相对链接", text="见上期和附件，加粗。第二句在这里！第三句不在摘要里。", html=body)
    section = Section(name="技术", slug="technology", items=(item,))
    return Issue(
        number=400,
        date=dt.date(2024, 2, 5),
        title="行业动态周报",
        publisher="中国网络视听协会",
        summary=("要点",),
        sections=(section,),
    )


def test_entries_stand_alone_in_a_reader(golden_publication: Publication) -> None:
    files = render_feeds([_hand_made_issue()], golden_publication)
    root = etree.fromstring(files["feeds/technology.atom"])
    [entry] = root.iter(f"{ATOM}entry")
    content = entry.findtext(f"{ATOM}content") or ""
    links = re.findall(r'(?:href|src)="([^"]*)"', content)
    assert links == [
        "https://news.example.org/issues/397#abc",
        "https://news.example.org/issues/files/a.pdf",  # as the web version at /issues/400 resolves it
        "https://news.example.org/issues/img/x.png",
    ]
    assert entry.get(XML_LANG) == "zh-CN"
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "中国网络视听协会"
    assert entry.findtext(f"{ATOM}summary") == "见上期和附件，加粗。第二句在这里！"  # plain text, two sentences
    [issue_entry] = etree.fromstring(files["feeds/issues.atom"]).iter(f"{ATOM}entry")
    assert issue_entry.find(f"{ATOM}link[@rel='alternate']").get("href") == "https://news.example.org/issues/400"
    assert 'href="https://news.example.org/issues/397#abc"' in (issue_entry.findtext(f"{ATOM}content") or "")


def test_a_summary_is_one_or_two_sentences_of_plain_text() -> None:
    long = "甲" * 80 + "。第二句。"
    assert first_sentences(long) == "甲" * 80 + "。"
    assert first_sentences("短句。第二句！第三句？") == "短句。第二句！"
    assert first_sentences("没有句号的一段话") == "没有句号的一段话"
    assert first_sentences("长" * 300).endswith("…") and len(first_sentences("长" * 300)) == 200
    assert first_sentences("") == ""


def test_two_issues_on_one_date_never_share_an_instant(golden_publication: Publication) -> None:
    issue = _hand_made_issue()
    twin = replace(issue, number=401)
    feeds = {feed.name: feed for feed in build_feeds([issue, twin], golden_publication)}
    instants = [entry.published for entry in feeds["issues"].entries]
    assert instants[0] - instants[1] == dt.timedelta(hours=1)


def test_the_publication_time_zone_decides_the_instant(golden_publication: Publication) -> None:
    utc = replace(golden_publication, timezone="UTC")
    [entry] = build_feeds([_hand_made_issue()], utc)[-1].entries
    assert entry.published.isoformat() == "2024-02-05T12:00:00+00:00"


def test_the_repository_config_says_the_publication_is_in_beijing() -> None:
    from feedsvc.config import load_publication

    assert load_publication(Path(__file__).resolve().parents[2] / "feedsvc.toml").timezone == "Asia/Shanghai"


def test_a_time_zone_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    from feedsvc.config import ConfigError, load_publication

    text = (Path(__file__).resolve().parents[2] / "feedsvc.toml").read_text("utf-8")
    config = tmp_path / "feedsvc.toml"
    config.write_text(text.replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Atlantis"'), "utf-8")
    with pytest.raises(ConfigError, match="Asia/Atlantis"):
        load_publication(config)

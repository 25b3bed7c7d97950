"""Archive search over the seed issue, on both databases: Chinese words, mixed and Latin text, ranking,
escaped highlighted snippets, the section filter, pages, hostile queries, and the page itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from builders import make_app
from flask import Flask
from sqlalchemy import func, select

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.db.engine import Database
from feedsvc.db.models import SearchEntry
from feedsvc.search import index, query, tokens

EXPECTED = {
    "抖音": {"a81dfadd7f"},
    "快手": {"914ff563af"},
    "微短剧": {"a81dfadd7f", "b7ca10e5b8"},
    "TikTok": {"e7e9e897a6"},
    "tiktok shop": {"e7e9e897a6"},
    "华为": {"97cf694ecd"},
    "音": {"a81dfadd7f", "8ed5599835"},  # one CJK character: the short-query fallback
    "量子引力波": set(),
}


@pytest.fixture
def indexed(db: Database, seed: Issue) -> Database:
    with db.session() as s:
        index.sync(s, [seed])
    return db


def _keys(db: Database, text: str, section: str = "") -> set[str]:
    with db.session(readonly=True) as s:
        return {hit.item_key for hit in query.search(s, text, section).hits}


@pytest.mark.parametrize(("text", "keys"), EXPECTED.items())
def test_queries_find_exactly_their_items(indexed: Database, text: str, keys: set[str]) -> None:
    assert _keys(indexed, text) == keys


def test_the_ground_truth_is_substring_containment(seed: Issue) -> None:
    for text, keys in EXPECTED.items():
        found = {i.key for _, i in seed.items if text.lower() in f"{i.title}\n{i.text}".lower()}
        assert found == keys, text


def test_bigrams_do_not_match_across_a_gap(db: Database, seed: Issue) -> None:
    # 微短 and 短剧 both occur, but not as 微短剧: a phrase of bigrams, not a bag of them
    section = seed.sections[0]
    apart = dataclasses.replace(section.items[0], key="apart", title="视频", text="微短视频，以及短剧。")
    together = dataclasses.replace(section.items[0], key="together", title="剧集", text="微短剧。")
    issue = dataclasses.replace(seed, number=902, sections=(dataclasses.replace(section, items=(apart, together)),))
    with db.session() as s:
        index.sync(s, [issue])
    assert _keys(db, "微短剧") == {"together"}


def test_section_filter(indexed: Database) -> None:
    assert _keys(indexed, "微短剧", "research") == {"b7ca10e5b8"}
    assert _keys(indexed, "华为", "industry") == set()


def test_snippets_are_escaped_and_highlighted(db: Database, seed: Issue) -> None:
    section = seed.sections[0]
    item = dataclasses.replace(section.items[0], title="<script>alert(1)</script> 抖音", text="a < b & 抖音来了")
    hostile = dataclasses.replace(seed, number=900, sections=(dataclasses.replace(section, items=(item,)),))
    with db.session() as s:
        index.sync(s, [hostile])
    with db.session(readonly=True) as s:
        [hit] = query.search(s, "<script>抖音").hits
    assert str(hit.title) == "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt; <mark>抖音</mark>"
    assert str(hit.snippet) == "a &lt; b &amp; <mark>抖音</mark>来了"


HOSTILE = ["<script>", "%", '"', "_", "'", "\\", "抖音 OR", "NEAR(a b)", "x" * 5000, "音" * 5000, "抖音\x00"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_are_answered_safely(indexed: Database, text: str) -> None:
    with indexed.session(readonly=True) as s:
        results = query.search(s, text)
    assert len(results.hits) <= query.PAGE_SIZE
    assert all("<script" not in str(h.title) + str(h.snippet) for h in results.hits)
    if text in ("%", "_", '"', "'", "\\", "<script>"):  # LIKE wildcards and quotes are text, not syntax
        assert results.total == 0


def test_ranking_puts_the_denser_match_first(db: Database, seed: Issue) -> None:
    section = seed.sections[0]
    once = dataclasses.replace(section.items[0], key="once", title="行业", text="提到一次快手。" + "其他内容。" * 40)
    often = dataclasses.replace(section.items[0], key="often", title="快手", text="快手、快手、快手。")
    issue = dataclasses.replace(seed, number=901, sections=(dataclasses.replace(section, items=(once, often)),))
    with db.session() as s:
        index.sync(s, [issue])
    with db.session(readonly=True) as s:
        assert [h.item_key for h in query.search(s, "快手").hits] == ["often", "once"]


def test_pages_and_sync(db: Database, seed: Issue) -> None:
    issues = [dataclasses.replace(seed, number=n) for n in range(1, 13)]
    with db.session() as s:
        assert index.sync(s, issues) == 12
        assert index.sync(s, issues) == 0
    with db.session(readonly=True) as s:
        first, second = query.search(s, "抖音", page=1), query.search(s, "抖音", page=2)
    assert (first.total, first.pages, len(first.hits), len(second.hits)) == (12, 2, 10, 2)
    assert [h.issue_number for h in first.hits + second.hits] == list(range(12, 0, -1))
    with db.session() as s:
        index.sync(s, issues[:3], refresh=[1])
    with db.session(readonly=True) as s:
        assert s.scalar(select(func.count(func.distinct(SearchEntry.issue_number)))) == 3
        assert query.search(s, "抖音").total == 3


def test_tokens() -> None:
    assert tokens.document_tokens("抖音和TikTok Shop，华") == ["抖音", "音和", "tiktok", "shop", "华"]
    assert [t.tokens for t in tokens.query_terms("微短剧 Ｔｉｋｔｏｋ")] == [("微短", "短剧"), ("tiktok",)]
    assert len(tokens.query_terms("a b " * 3000)) <= tokens.MAX_TERMS


@pytest.fixture
def app(settings: Settings, seed: Issue) -> Iterator[Flask]:
    with make_app(settings) as app:
        from feedsvc.web.database import get_db

        with app.app_context(), get_db().session() as s:
            index.sync(s, [seed])
        yield app


def test_search_page(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/search?q=抖音").get_data(as_text=True)
    assert "<mark>抖音</mark>" in page and "/issues/398#a81dfadd7f" in page
    assert "<script" not in client.get("/search?q=%3Cscript%3E").get_data(as_text=True).split("</style>")[-1]
    english = client.get("/search?q=nothing-here&lang=en", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert client.get("/search?q=" + "x" * 5000).status_code == 200
    assert client.get("/search?q=华为&section=bogus&page=-3").status_code == 200
    assert english

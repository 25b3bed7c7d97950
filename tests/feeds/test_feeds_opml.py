"""/feeds.opml: every feed in one OPML 2.0 file with Chinese and English titles, linked from the landing and
archive pages; newsboat imports it and then reloads every feed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import lxml.html
from lxml import etree

from feedsvc.config import Publication
from feedsvc.site.feeds import feed_names
from feedsvc.site.opml import render

TITLES = {
    "industry": ("行业动态周报 · 行业", "Industry Weekly · Industry"),
    "content": ("行业动态周报 · 内容", "Industry Weekly · Content"),
    "technology": ("行业动态周报 · 技术", "Industry Weekly · Technology"),
    "capital": ("行业动态周报 · 资本", "Industry Weekly · Capital"),
    "people": ("行业动态周报 · 人事", "Industry Weekly · People"),
    "research": ("行业动态周报 · 研究", "Industry Weekly · Research"),
    "all": ("行业动态周报 · 全部栏目", "Industry Weekly · All sections"),
    "issues": ("行业动态周报 · 整期", "Industry Weekly · Whole issues"),
}


def test_opml_lists_every_feed_with_chinese_and_english_titles(golden_publication: Publication) -> None:
    root = etree.fromstring(render(golden_publication))
    assert (root.tag, root.get("version")) == ("opml", "2.0")
    assert root.findtext("head/title") == "行业动态周报 · Industry Weekly"
    outlines = root.findall("body/outline")
    assert [o.get("xmlUrl") for o in outlines] == [
        f"https://news.example.org/feeds/{name}.atom" for name in feed_names(golden_publication)
    ]
    for outline, name in zip(outlines, feed_names(golden_publication), strict=True):
        zh, en = TITLES[name]
        assert (outline.get("text"), outline.get("title")) == (f"{zh} / {en}", zh)
        assert outline.get("type") == "rss"  # OPML 2.0 says rss for every kind of feed
        assert outline.get("htmlUrl") == "https://news.example.org/issues/"


def test_opml_is_served_and_linked_from_the_landing_and_archive_pages(client) -> None:  # type: ignore[no-untyped-def]
    served = client.get("/feeds.opml")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    for url in etree.fromstring(served.data).xpath("//outline/@xmlUrl"):
        assert client.get(url.split("8000", 1)[1]).status_code == 200, url
    for page in ("/", "/issues/", "/?lang=en", "/issues/?lang=en"):
        document = lxml.html.fromstring(client.get(page).data)
        assert document.xpath("//a[@href='/feeds.opml']"), page
        assert document.xpath("//link[@rel='outline' and @href='/feeds.opml']"), page


def test_newsboat_imports_the_opml_and_reloads_every_feed(
    live, tmp_path: Path, require_tool: Callable[[str], str]
) -> None:  # type: ignore[no-untyped-def]
    newsboat = require_tool("newsboat")
    opml = tmp_path / "feeds.opml"
    with urllib.request.urlopen(f"{live.url}/feeds.opml", timeout=10) as response:
        opml.write_bytes(response.read())
    urls, cache, config = tmp_path / "urls", tmp_path / "cache.db", tmp_path / "config"
    config.write_text("reload-threads 2\ndownload-timeout 20\n", "utf-8")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    common = ["-u", str(urls), "-c", str(cache), "-C", str(config)]
    before = {name: _fetches(live.log, name) for name in TITLES}
    for command in ([newsboat, "-i", str(opml), *common], [newsboat, "-x", "reload", *common]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    imported = [line.split()[0].strip('"') for line in urls.read_text("utf-8").splitlines() if line.strip()]
    assert imported == [f"{live.url}/feeds/{name}.atom" for name in TITLES]
    with sqlite3.connect(cache) as db:
        feeds = {url: (title, etag) for url, title, etag in db.execute("SELECT rssurl, title, etag FROM rss_feed")}
        guids = {row[0] for row in db.execute("SELECT guid FROM rss_item")}
    # every feed was fetched and read (newsboat has its title) …
    assert {url: title for url, (title, _) in feeds.items()} == {
        f"{live.url}/feeds/{name}.atom": zh for name, (zh, _) in TITLES.items()
    }
    assert all(_fetches(live.log, name) > before[name] for name in TITLES)
    # … and every entry arrived. newsboat keeps an entry once however many feeds carry it (a section's items
    # are in `all` too, with the same id), so the count is of distinct ids: 27 items and 1 whole issue.
    assert len(guids) == 28


def _fetches(log: Path, name: str) -> int:
    """How many GETs of the feed `name` the live server's access log shows, answered 200."""
    lines = log.read_text("utf-8", "replace").splitlines()
    return sum(1 for line in lines if f"GET /feeds/{name}.atom " in line and line.rstrip().endswith("200 -"))

"""An issue written to break things (<script>, javascript: links, event handlers, control characters) gives
well-formed feeds and pages in which all of it is inert text."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import feedparser
import lxml.html
import pytest
from lxml import etree

from feedsvc.config import Publication, Settings
from feedsvc.content.model import Issue, Item, Section
from feedsvc.site.feeds import feed_names, render_feeds
from feedsvc.web import create_app

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = """# 行业动态周报

中国网络视听协会

第 400 期

2024 年 2 月 5 日

## 摘要：

- ◆<script>alert('summary')</script>摘要

## 行业

### <script>alert('title')</script>标题 & "引号" \x01 </h3><b>

正文<script>alert('body')</script>，[点我](javascript:alert(1))，<img src=x onerror=alert(2)>，控制\x07字符\x1b在此。
<a href="javascript:alert(3)">链接</a> [安全](https://example.org/?a=1&b=2) <iframe src="https://evil.example"></iframe>

## 技术

### 第二条\x0b

<svg onload=alert(4)></svg> 结束。

**编辑部：**<script>alert('colophon')</script>
"""


@pytest.fixture
def hostile_site(site_settings: Settings, rebuild: Callable[[Settings], None]) -> Settings:
    (site_settings.issues_dir / "2024-02-05-400.md").write_bytes(HOSTILE.encode("utf-8"))
    rebuild(site_settings)
    return site_settings


def _inert_html(fragment: str) -> None:
    """No element or attribute in `fragment` can run script: no <script>/<iframe>/<svg>, no on*, no javascript:."""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for element in root.iter():
        assert element.tag not in ("script", "iframe", "svg", "img", "object", "embed"), lxml.html.tostring(element)
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert not value.strip().lower().startswith(("javascript:", "data:")), (element.tag, name, value)


def test_hostile_feeds_are_well_formed_and_inert(hostile_site: Settings) -> None:
    for name in feed_names(hostile_site.publication):
        data = (hostile_site.site_dir / "feeds" / f"{name}.atom").read_bytes()
        root = etree.fromstring(data)  # strict XML: raises on anything not well-formed
        assert feedparser.parse(data).bozo == 0
        for content in root.iter(f"{ATOM}content"):
            assert content.get("type") == "html"
            _inert_html(content.text or "")
        document = json.loads((hostile_site.site_dir / "feeds" / f"{name}.json").read_bytes())
        for item in document["items"]:
            _inert_html(item["content_html"])
            assert not any(ord(c) < 32 and c not in "\t\n\r" for c in item["title"] + item["content_html"])
    all_feed = feedparser.parse((hostile_site.site_dir / "feeds" / "all.atom").read_bytes())
    titles = [e.title for e in all_feed.entries]
    assert """<script>alert('title')</script>标题 & "引号"  </h3><b>""" in titles  # kept as text, not as markup
    assert "第二条" in titles


@pytest.mark.parametrize("page", ["issues/400.html", "issues/400.en.html", "issues/index.html"])
def test_hostile_pages_escape_everything(hostile_site: Settings, page: str) -> None:
    html = (hostile_site.site_dir / page).read_text("utf-8")
    assert "<script" not in html.lower()
    _inert_html(html.split("<body>", 1)[1].split("</body>", 1)[0])
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in html or "400.html" not in page


def test_hostile_landing_page_escapes_everything(hostile_site: Settings) -> None:
    client = create_app(hostile_site, TESTING=True).test_client()
    html = client.get("/").get_data(as_text=True)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#39;summary&#39;)&lt;/script&gt;" in html


def test_feeds_strip_xml_forbidden_characters_even_from_issues_made_elsewhere(
    golden_publication: Publication, seed_issue: Issue
) -> None:
    item = Item(key="k1", title="控制\x01字符\x1f标题\ufffe", text="x", html="<p>a\x0bb\x00c</p>")
    issue = replace(
        seed_issue,
        number=401,
        date=dt.date(2024, 2, 12),
        summary=("要点\x02",),
        sections=(Section("行业", "industry", (item,)),),
    )
    files = render_feeds([issue], golden_publication)
    for path, data in files.items():
        if path.endswith(".atom"):
            etree.fromstring(data)
        text = data.decode("utf-8")
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in text), path
    entry = feedparser.parse(files["feeds/industry.atom"]).entries[0]
    assert entry.title == "控制字符标题"
    assert entry.content[0].value == "<p>abc</p>"


def test_unsafe_links_never_become_links(tmp_path: Path, hostile_site: Settings) -> None:
    html = (hostile_site.site_dir / "issues" / "400.html").read_text("utf-8")
    hrefs = lxml.html.fromstring(html).xpath("//a/@href")
    assert "https://example.org/?a=1&b=2" in hrefs
    assert not [h for h in hrefs if not h.startswith(("/", "#", "http://", "https://", "?"))]

"""The pages a web reader sees: landing, archive, an issue, the 404 page, in Chinese and English."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import lxml.html

from feedsvc.config import Settings
from feedsvc.content.model import Issue
from feedsvc.web import create_app

NAMES = ("industry", "content", "technology", "capital", "people", "research", "all", "issues")


def page(client, path: str) -> lxml.html.HtmlElement:  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 200, path
    return lxml.html.fromstring(response.data)


def test_landing_shows_publication_latest_issue_and_every_feed(client) -> None:  # type: ignore[no-untyped-def]
    doc = page(client, "/")
    discovery = doc.xpath("//head/link[@rel='alternate']")
    assert [link.get("href") for link in discovery] == [
        *(f"http://127.0.0.1:8000/feeds/{n}.atom" for n in NAMES),
        *(f"http://127.0.0.1:8000/feeds/{n}.json" for n in NAMES),
    ]
    assert [link.get("type") for link in discovery] == ["application/atom+xml"] * 8 + ["application/feed+json"] * 8
    assert all(link.get("title", "").startswith("行业动态周报 · ") for link in discovery)
    text = doc.text_content()
    assert "行业动态周报" in text and "中国网络视听协会" in text
    assert "行业动态周报 第 398 期" in text and "2024 年 1 月 22 日" in text
    assert "第五批国家文化和科技融合示范基地名单公布" in text  # the summary
    hrefs = doc.xpath("//main//a/@href")
    for name in NAMES:
        assert f"/feeds/{name}.atom" in hrefs and f"/feeds/{name}.json" in hrefs
    assert "/issues/398" in hrefs


def test_landing_includes_the_subscribe_form_when_a_template_provides_it(built: Settings, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(built.templates_dir, templates)
    (templates / "web" / "_subscribe_form.html").write_text('<form id="subscribe-here"></form>', "utf-8")
    client = create_app(built.with_overrides(templates_dir=templates), TESTING=True).test_client()
    assert page(client, "/").xpath("//form[@id='subscribe-here']")


def test_archive_lists_every_issue(client, built: Settings, write_issue, rebuild) -> None:  # type: ignore[no-untyped-def]
    write_issue(399, dt.date(2024, 1, 29), {"人事": [("新任命", "正文。")]})
    rebuild(built)
    doc = page(client, "/issues/")
    links = doc.xpath("//ol[contains(@class, 'issue-list')]/li/h2/a")
    assert [(a.get("href"), a.text) for a in links] == [
        ("/issues/399", "行业动态周报 第 399 期"),
        ("/issues/398", "行业动态周报 第 398 期"),
    ]
    assert len(doc.xpath("//head/link[@rel='alternate']")) == 2 * len(NAMES)  # Atom and JSON Feed each
    newer = page(client, "/issues/399")
    assert newer.xpath("//a[@rel='prev']/@href") == ["/issues/398"]
    assert page(client, "/issues/398").xpath("//a[@rel='prev']") == []


def test_issue_page_has_an_anchor_per_section_and_item(client, seed_issue: Issue) -> None:  # type: ignore[no-untyped-def]
    doc = page(client, "/issues/398")
    ids = set(doc.xpath("//@id"))
    for section in seed_issue.sections:
        assert section.slug in ids
        for item in section.items:
            assert item.key in ids
            [article] = doc.xpath(f"//article[@id='{item.key}']")
            assert article.xpath("string(.//h3)").strip() == item.title
    toc = doc.xpath("//nav[@id='contents']//a/@href")
    assert len(toc) == 6 + 27 and all(h[1:] in ids for h in toc)
    assert len(doc.xpath("//section[contains(@class,'section')]")) == 6
    assert len(doc.xpath("//article[contains(@class,'item')]")) == 27
    colophon = doc.xpath("string(//footer[@class='colophon'])")
    assert "编辑部" in colophon
    [research] = doc.xpath("//section[@id='research']")
    assert "编辑部" not in research.text_content()
    assert "应当被认定为作品" in doc.text_content()


def test_pages_work_without_javascript_on_a_phone(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/", "/issues/", "/issues/398", "/nowhere"):
        html = client.get(path).get_data(as_text=True)
        assert "<script" not in html
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
        assert "prefers-color-scheme: dark" in html


def test_english_pages(client) -> None:  # type: ignore[no-untyped-def]
    doc = page(client, "/issues/398?lang=en")
    assert doc.get("lang") == "en"
    text = doc.text_content()
    assert "Issue 398" in text and "22 January 2024" in text and "Contents" in text and "Technology" in text
    assert "华为数字人表情调整专利公布" in text  # the content stays as written
    assert "Latest issue" in page(client, "/").text_content()  # the lang cookie carries over
    assert "最新一期" in page(client, "/?lang=zh-CN").text_content()
    assert "往期" in page(client, "/issues/").text_content()


def test_404_pages_say_what_there_is(client) -> None:  # type: ignore[no-untyped-def]
    missing = client.get("/issues/999")
    assert missing.status_code == 404
    text = lxml.html.fromstring(missing.data).text_content()
    assert "没有第 999 期" in text and "行业动态周报 第 398 期" in text
    feed = client.get("/feeds/tech.atom")
    assert feed.status_code == 404
    assert "/feeds/technology.atom" in feed.get_data(as_text=True)
    other = client.get("/no/such/page?lang=en")
    assert other.status_code == 404
    assert "Page not found" in other.get_data(as_text=True)
    assert "/no/such/page" in other.get_data(as_text=True)


def test_unknown_feed_names_are_404(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/feeds/../site.json", "/feeds/ALL.atom", "/feeds/site.json", "/feeds/.atom"):
        assert client.get(path).status_code == 404, path


def test_pages_of_a_site_built_elsewhere_link_to_the_right_place(client, built: Settings) -> None:  # type: ignore[no-untyped-def]
    doc = page(client, "/issues/398")
    assert doc.xpath("//link[@rel='canonical']/@href") == ["http://127.0.0.1:8000/issues/398"]
    follow = doc.xpath("//section[@id='technology']//a[contains(@class,'tag')]/@href")
    assert follow == ["/feeds/technology.atom"]

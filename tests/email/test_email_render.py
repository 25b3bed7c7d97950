"""render(): the inlined HTML and the text part of one section choice, cached per choice."""

from __future__ import annotations

import dataclasses

import cssutils
import lxml.html
import pytest
from email_support import MANAGE, UNSUBSCRIBE
from lxml.cssselect import CSSSelector

from feedsvc.config import Publication
from feedsvc.content.model import Issue
from feedsvc.mail import message as mail_message
from feedsvc.mail import newsletter
from feedsvc.mail.templates import environment

CJK_FONTS = ('"PingFang SC"', '"Hiragino Sans GB"', '"Microsoft YaHei"', '"Noto Sans CJK SC"', "sans-serif")


def titles(issue: Issue, slugs: set[str]) -> list[str]:
    return [item.title for section, item in issue.items if section.slug in slugs]


def stylesheet(name: str) -> cssutils.css.CSSStyleSheet:
    """A stylesheet of templates/email/ as the template includes it (Jinja comments removed)."""
    source = environment(str(newsletter.DEFAULT_TEMPLATES), "zh-CN").get_template(f"email/{name}").render()
    return cssutils.parseString(source, validate=False)


def test_subject_is_title_number_and_date(seed: Issue) -> None:
    assert newsletter.subject_for(seed) == "行业动态周报 第398期（2024年1月22日）"
    assert newsletter.subject_for(dataclasses.replace(seed, subject="特刊：年度回顾")) == "特刊：年度回顾"


def test_only_the_chosen_sections_are_in_either_part(seed: Issue, publication: Publication) -> None:
    chosen = {"industry", "technology"}
    rendered = newsletter.render(seed, ["technology", "industry"], publication)
    assert rendered.sections == ("industry", "technology")  # issue order, whatever the order asked
    for title in titles(seed, chosen):
        assert title in rendered.html
        assert title in rendered.text
    others = set(seed.slugs) - chosen
    for title in titles(seed, others):
        assert title not in rendered.html
        assert title not in rendered.text
    doc = lxml.html.fromstring(rendered.html)
    assert [a.get("href") for a in doc.cssselect("p.toc a")] == ["#industry", "#technology"]
    assert [h.get("id") for h in doc.cssselect("h2.section-title")] == ["industry", "technology"]
    assert len(doc.cssselect("h3.item-title")) == 12 + 4


def test_every_item_and_the_colophon_of_the_whole_issue(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "all", publication)
    doc = lxml.html.fromstring(rendered.html)
    assert [h.text_content() for h in doc.cssselect("h3.item-title")] == [i.title for _, i in seed.items]
    colophon = [p.text_content() for p in doc.cssselect("td.colophon p")]
    assert colophon == list(seed.colophon)
    # the colophon is no part of the last (研究) item
    last_item = doc.cssselect("td.item")[-1].text_content()
    assert "编辑部" not in last_item


def test_render_is_cached_per_section_set(
    seed: Issue, publication: Publication, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = newsletter.inline_css
    monkeypatch.setattr(newsletter, "inline_css", lambda html: calls.append(1) or real(html))
    newsletter.render.cache_clear()  # type: ignore[attr-defined]
    first = newsletter.render(seed, "industry,content", publication)
    assert newsletter.render(seed, ["content", "industry"], publication) is first
    assert newsletter.render(seed, {"industry", "content"}, publication) is first
    other = newsletter.render(seed, "industry", publication)
    assert other is not first
    assert newsletter.render(seed, None, publication) is newsletter.render(seed, "all", publication)
    assert len(calls) == 3  # industry+content, industry, all


def test_a_choice_missing_from_the_issue_is_one_render(seed: Issue, publication: Publication) -> None:
    small = seed.only(["industry"])
    # a reader of industry+people gets the same email as a reader of industry, when the issue has no people
    assert newsletter.render(small, "industry,people", publication) is newsletter.render(small, "industry", publication)
    with pytest.raises(newsletter.EmptySelection):
        newsletter.render(small, "people", publication)


def test_unknown_sections_and_languages_are_refused(seed: Issue, publication: Publication) -> None:
    with pytest.raises(mail_message.EmailError, match="unknown section sports"):
        newsletter.render(seed, "industry,sports", publication)
    with pytest.raises(mail_message.EmailError, match="unknown language"):
        newsletter.render(seed, "all", publication, lang="fr")


def test_placeholders_survive_inlining(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "all", publication)
    assert 'href="FEEDSVC-MANAGE-URL"' in rendered.html
    assert 'href="FEEDSVC-UNSUBSCRIBE-URL"' in rendered.html
    assert "FEEDSVC-RECIPIENT" in rendered.html
    for placeholder in mail_message.PLACEHOLDERS:
        assert placeholder in rendered.text


def test_premailer_mangles_template_syntax_in_href_which_is_why_placeholders_are_plain() -> None:
    mangled = newsletter.inline_css('<html><body><a href="{{ manage_url }}">x</a></body></html>')
    assert "{{ manage_url }}" not in mangled
    assert "{{%20manage_url%20}}" in mangled  # the spaces are URL-encoded: a template can no longer fill it


def test_the_cjk_font_stack_survives_inlining(seed: Issue, publication: Publication) -> None:
    doc = lxml.html.fromstring(newsletter.render(seed, "all", publication).html)
    cells = doc.cssselect("td")
    assert cells
    for cell in cells:
        family = cssutils.parseStyle(cell.get("style", ""), validate=False).getPropertyValue("font-family")
        for font in CJK_FONTS:
            assert font.strip('"') in family, (font, cell.get("class"))
        assert family.index("PingFang SC") < family.index("Noto Sans CJK SC") < family.index("sans-serif")


def test_every_styled_element_carries_its_styles_inline(seed: Issue, publication: Publication) -> None:
    """Each element matched by a rule of email.css has every property of that rule in its style attribute."""
    doc = lxml.html.fromstring(newsletter.render(seed, "all", publication).html)
    checked = 0
    for rule in stylesheet("email.css"):
        if rule.type != rule.STYLE_RULE:
            continue
        names = {prop.name for prop in rule.style}
        for selector in rule.selectorText.split(","):
            for element in CSSSelector(selector.strip())(doc):
                inline = {p.name for p in cssutils.parseStyle(element.get("style", ""), validate=False)}
                assert names <= inline, (selector, names - inline)
                checked += 1
    assert checked > 200


def test_what_stays_in_style_elements_cannot_be_inlined(seed: Issue, publication: Publication) -> None:
    """Media queries, :root and Outlook's [data-ogsc]/[data-ogsb] recolouring; nothing plain."""
    doc = lxml.html.fromstring(newsletter.render(seed, "all", publication).html)
    styles = doc.cssselect("style")
    assert len(styles) == 2
    media = []
    for style in styles:
        assert style.get("data-premailer") is None
        for rule in cssutils.parseString(style.text, validate=False):
            if rule.type == rule.MEDIA_RULE:
                media.append(rule.media.mediaText)
                continue
            assert rule.type == rule.STYLE_RULE
            for selector in rule.selectorText.split(","):
                selector = selector.strip()
                assert selector.startswith((":root", "[data-ogsc]", "[data-ogsb]")), selector
    assert any("max-width" in m for m in media)
    assert any("prefers-color-scheme: dark" in m for m in media)
    dark = "".join(s.text for s in styles)
    assert "!important" in dark  # strip_important=False: dark and mobile rules must beat inline styles


def test_mail_client_structure(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "all", publication)
    doc = lxml.html.fromstring(rendered.html)
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert doc.get("lang") == "zh-CN"
    assert doc.cssselect('meta[name="color-scheme"]')[0].get("content") == "light dark"
    assert doc.cssselect('meta[name="viewport"]')
    tables = doc.cssselect("table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    container = doc.cssselect("table.container")[0]
    assert "max-width:600px" in container.get("style").replace(" ", "")
    assert '<!--[if mso]><table role="presentation" width="600"' in rendered.html  # Outlook's fixed width
    assert not doc.cssselect("img")  # nothing needs an image
    masthead = doc.cssselect("td.masthead")[0].text_content()
    assert "行业动态周报" in masthead and "第 398 期" in masthead and "2024 年 1 月 22 日" in masthead
    assert "中国网络视听协会" in masthead


def test_hidden_preheader_from_the_summary(seed: Issue, publication: Publication) -> None:
    doc = lxml.html.fromstring(newsletter.render(seed, "all", publication).html)
    body = doc.cssselect("body")[0]
    preheader = body.cssselect(".preheader")[0]
    assert next(body.iter("div", "table", "p")) is preheader.getparent() or preheader.getprevious() is None
    style = preheader.get("style").replace(" ", "")
    assert "display:none" in style and "mso-hide:all" in style and "max-height:0" in style
    text = preheader.text_content()
    assert text.startswith("；".join(seed.summary[:2]))


def test_preheader_and_highlights_keep_to_the_chosen_sections(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "technology", publication)
    doc = lxml.html.fromstring(rendered.html)
    highlights = [li.text_content() for li in doc.cssselect("ul.summary li")]
    tech = titles(seed, {"technology"})
    # the seed's highlights are all 行业 items, so a technology reader sees technology titles instead
    assert highlights == tech[:3]
    assert doc.cssselect(".preheader")[0].text_content().startswith(tech[0])


def test_footer_links_and_why(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "industry,technology", publication)
    doc = lxml.html.fromstring(rendered.html)
    hrefs = [a.get("href") for a in doc.cssselect("td.footer a")]
    assert hrefs == ["http://127.0.0.1:8000/issues/398", "FEEDSVC-MANAGE-URL", "FEEDSVC-UNSUBSCRIBE-URL"]
    why = doc.cssselect("td.footer p")[0].text_content()
    assert "FEEDSVC-RECIPIENT" in why and "行业、技术" in why and "《行业动态周报》" in why
    assert doc.cssselect("td.topbar a")[0].get("href") == "http://127.0.0.1:8000/issues/398"


def test_postal_address_in_both_parts_only_when_configured(seed: Issue, publication: Publication) -> None:
    plain = newsletter.render(seed, "capital", publication)
    assert not lxml.html.fromstring(plain.html).cssselect(".footer-address")
    address = "北京市某区某路 1 号 <100000>"
    with_address = newsletter.render(seed, "capital", dataclasses.replace(publication, postal_address=address))
    (shown,) = lxml.html.fromstring(with_address.html).cssselect("td.footer .footer-address")
    assert shown.text_content() == address  # escaped in HTML, shown as written
    assert "&lt;100000&gt;" in with_address.html
    assert with_address.text.rstrip().endswith(address)


def test_text_part_reads_well(seed: Issue, publication: Publication) -> None:
    text = newsletter.render(seed, "industry,research", publication).text
    lines = text.splitlines()
    assert lines[0] == "行业动态周报"
    assert lines[1] == "中国网络视听协会 · 第 398 期 · 2024 年 1 月 22 日"
    assert "在浏览器中查看：http://127.0.0.1:8000/issues/398" in lines
    assert "行业\n====\n" in text and "研究\n====\n" in text  # underlined as wide as the CJK heading
    for _, item in [(s, i) for s, i in seed.items if s.slug in ("industry", "research")]:
        assert f"■ {item.title}\n\n{item.text}" in text
    assert "应当被认定为作品" in text
    assert "<" not in text and "&amp;" not in text
    assert "\n\n\n" not in text and text.endswith("\n") and not any(line != line.rstrip() for line in lines)
    assert "退订：FEEDSVC-UNSUBSCRIBE-URL" in text and "管理订阅：FEEDSVC-MANAGE-URL" in text
    assert "编辑部：中国网络视听协会 对外合作部" in text


def test_english_chrome_keeps_the_content(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "industry", publication, lang="en")
    doc = lxml.html.fromstring(rendered.html)
    assert doc.get("lang") == "zh-CN"  # the content is Chinese
    footer = doc.cssselect("td.footer")[0]
    assert footer.get("lang") == "en"
    assert "Unsubscribe" in footer.text_content() and "Industry" in footer.text_content()
    assert "View in your browser: http://127.0.0.1:8000/issues/398" in rendered.text
    assert seed.sections[0].items[0].title in rendered.text


def test_hostile_content_is_escaped(hostile: Issue, publication: Publication, links: mail_message.Links) -> None:
    evil = dataclasses.replace(publication, name="<b>周报</b>", from_name="周报")
    rendered = newsletter.render(hostile, "all", evil)
    doc = lxml.html.fromstring(rendered.html)
    assert not doc.cssselect("script, img, b, i, iframe")
    assert not [el for el in doc.iter() if any(name.startswith("on") for name in el.attrib)]
    hrefs = [a.get("href", "") for a in doc.cssselect("a")]
    assert not [h for h in hrefs if h.lower().startswith(("javascript", "data"))]
    assert '&lt;script&gt;alert("body")&lt;/script&gt;' in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt; 标题 &amp;" in rendered.html
    assert "&lt;/style&gt;&lt;style&gt;" in rendered.html
    assert len(doc.cssselect("style")) == 2  # the issue's </style><style> made no style element
    assert "《&lt;b&gt;周报&lt;/b&gt;》" in rendered.html


def test_placeholder_text_in_an_issue_is_not_filled_in(
    hostile: Issue, publication: Publication, links: mail_message.Links
) -> None:
    personal = newsletter.personalise(newsletter.render(hostile, "all", publication), "reader@example.com", links)
    # only the footer's own placeholders were filled; the issue's look-alikes stay as text
    assert personal.html.count(MANAGE) == 1 and personal.text.count(MANAGE) == 1
    assert personal.html.count(UNSUBSCRIBE) == 1
    assert personal.html.count("reader@example.com") == 1
    assert "FEEDSVC\u2011MANAGE-URL" in personal.html and "FEEDSVC\u2011RECIPIENT" in personal.text


def test_whole_seed_issue_stays_under_gmail_clipping(seed: Issue, publication: Publication) -> None:
    rendered = newsletter.render(seed, "all", publication)
    links = mail_message.Links(MANAGE, UNSUBSCRIBE)
    message = mail_message.build_message(rendered, "reader@example.com", links, publication)
    html_part = message.get_body(("html",))
    assert html_part is not None
    assert rendered.html_bytes < newsletter.GMAIL_CLIP_BYTES
    assert len(html_part.get_content().encode()) < newsletter.GMAIL_CLIP_BYTES
    assert len(html_part.as_bytes()) < newsletter.GMAIL_CLIP_BYTES  # even counted base64-encoded


def test_inlining_is_offline_and_quiet(
    seed: Issue, publication: Publication, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    newsletter.render.cache_clear()  # type: ignore[attr-defined]
    with caplog.at_level("DEBUG"):
        newsletter.render(seed, "all", publication, lang="en")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert not [r for r in caplog.records if r.levelno >= 30]  # no cssutils warnings about the stylesheet
    # an external stylesheet is neither fetched nor read from disk: it is left as it is
    linked = '<html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head><body><p>x</p></body></html>'
    inlined = newsletter.inline_css(linked)
    assert 'href="http://127.0.0.1:9/x.css"' in inlined and "style=" not in inlined


def test_placeholder_text_in_the_subject_is_not_filled_in(
    seed: Issue, publication: Publication, links: mail_message.Links
) -> None:
    sly = dataclasses.replace(seed, subject="本周要闻 FEEDSVC-MANAGE-URL")
    personal = newsletter.personalise(newsletter.render(sly, "technology", publication), "reader@example.com", links)
    # the <title> and the aria-label carry the subject: a reader's private link must not appear there
    assert personal.html.count(MANAGE) == 1 and personal.text.count(MANAGE) == 1
    assert "本周要闻 FEEDSVC\u2011MANAGE-URL" in personal.html

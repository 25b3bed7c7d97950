"""One rule each, whoever asks: section labels, section choices, dates and images read the same in pages,
feeds, mails, the admin and the CSV import."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from feedsvc.config import Publication, SectionConfig, choose_sections
from feedsvc.content.model import Issue
from feedsvc.content.reader import parse, parse_text, read_issues
from feedsvc.i18n import date_text
from feedsvc.mail import newsletter
from feedsvc.site.build import render_site
from feedsvc.subscribers.csvfile import parse_sections

ROOT = Path(__file__).resolve().parents[2]


def test_section_labels_come_from_the_publication(publication: Publication) -> None:
    plain = replace(publication, sections=(*publication.sections, SectionConfig("体育", "sport")))
    assert plain.section_label("industry", "en") == "Industry"
    assert plain.section_label("industry", "zh-CN") == "行业"
    assert plain.section_label("sport", "en") == "体育"  # no English name: the heading as written
    assert plain.section_label("gone", "en") == "gone"
    assert plain.variant_label("industry;research", "en") == "Industry + Research"
    assert plain.variant_label("", "zh-CN") == "—"


@pytest.mark.parametrize(
    ("value", "slugs", "unknown"),
    [
        (None, ("industry", "content", "technology", "capital", "people", "research"), ()),
        (" All ", ("industry", "content", "technology", "capital", "people", "research"), ()),
        ("research;industry", ("industry", "research"), ()),
        ("research, Industry,,industry", ("industry", "research"), ()),
        (["research", " technology "], ("technology", "research"), ()),
        ("sport;industry", ("industry",), ("sport",)),
        ("", (), ()),
    ],
)
def test_one_parser_for_every_section_choice(publication: Publication, value, slugs, unknown) -> None:  # type: ignore[no-untyped-def]
    assert publication.choose_sections(value) == (slugs, unknown)
    assert choose_sections(value, publication.slugs) == (slugs, unknown)


def test_mail_and_csv_take_the_same_choices(publication: Publication, seed_path) -> None:  # type: ignore[no-untyped-def]
    seed = parse(seed_path, publication)
    # the mail took only commas, the CSV import only semicolons: one rule now
    assert newsletter.render(seed, "research;industry", publication).sections == ("industry", "research")
    assert parse_sections("research, industry", publication.slugs) == ("industry", "research")
    with pytest.raises(newsletter.EmailError, match="unknown section sport"):
        newsletter.render(seed, "sport", publication)
    with pytest.raises(ValueError, match=r"unknown section sport \(known:"):
        parse_sections("sport", publication.slugs)


class _LocaleDate(dt.date):
    """A date whose strftime answers as a German machine would: what a locale-dependent mail printed."""

    def strftime(self, fmt: str) -> str:
        return f"{self.day} Januar {self.year}"


def test_the_mail_date_does_not_follow_the_machine_locale(publication: Publication, seed_path) -> None:  # type: ignore[no-untyped-def]
    seed = parse(seed_path, publication)
    issue = replace(seed, date=_LocaleDate(2024, 1, 22))
    html, text = newsletter.render_source(issue, "all", publication, lang="en")
    assert date_text(issue.date, "en") == "22 January 2024"
    assert "22 January 2024" in html and "Januar " not in html + text
    zh_html, _ = newsletter.render_source(issue, "all", publication)
    assert date_text(issue.date, "zh-CN") in zh_html


def test_the_number_rule_is_one_for_check_and_build(publication: Publication, seed_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy.md"
    copy.write_bytes(seed_path.read_bytes())
    issues, errors = read_issues([seed_path, copy], publication)
    assert [i.number for i in issues] == [398]
    assert [str(e) for e in errors] == [f"{copy}: issue number 398 is already used by {seed_path}"]


HTTP_IMAGE = (
    "# 行业动态周报\n\n第 7 期\n\n2024 年 2 月 5 日\n\n## 资本\n\n### 新闻\n\n"
    "正文 ![跟踪](http://tracker.example/p.gif) 和 ![图](https://cdn.example/ok.png)。\n"
)


def test_an_http_image_is_in_no_page_feed_or_mail(publication: Publication) -> None:
    issue: Issue = parse_text(HTTP_IMAGE, publication, source="2024-02-05-7.md")
    files = render_site([issue], publication, ROOT / "templates")
    mail = newsletter.render(issue, "all", publication)
    for name, data in [*files.items(), ("mail.html", mail.html.encode()), ("mail.txt", mail.text.encode())]:
        assert b"tracker.example" not in data, name
    assert b"https://cdn.example/ok.png" in files["issues/7.html"] and "https://cdn.example/ok.png" in mail.html
